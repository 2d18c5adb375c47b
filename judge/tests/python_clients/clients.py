"""Runs four Judge0 client libraries from PyPI, unchanged, against the judge at JUDGE_URL.

Each library is used as its README shows, with only the base URL and the tokens
(JUDGE_AUTHN, JUDGE_AUTHZ) set. Every case's outcome is printed as one JSON object on the last
line of stdout: {"<client> <case>": {"stdout": ..., "status": <id>} or {"error": "..."}}.
tests/python_clients.rs asserts on it; a failing case never hides the others.
"""

import asyncio
import json
import os
import sys
import traceback

URL = os.environ["JUDGE_URL"]
AUTHN = os.environ["JUDGE_AUTHN"]
AUTHZ = os.environ["JUDGE_AUTHZ"]

PYTHON = "print(input()[::-1])\n"
CPP = "#include <iostream>\nint main() { int a, b; std::cin >> a >> b; std::cout << a + b << std::endl; }\n"

results = {}


def case(name):
    """Records what the decorated function returns, or the error it raises."""

    def record(run):
        try:
            results[name] = run()
        except BaseException:  # noqa: BLE001 - every failure is reported, none stops the others
            results[name] = {"error": traceback.format_exc(limit=4)}
        return run

    return record


def text(value):
    return value.decode() if isinstance(value, bytes) else value


# The official SDK (judge0): aliases resolved by /about's version, languages checked
# against /languages, submissions polled until finished.
import judge0  # noqa: E402



def sdk():
    # Made in each case: making it already asks the judge (/languages, /config_info).
    return judge0.Client(endpoint=URL, headers={"X-Auth-Token": AUTHN})


@case("judge0 python")
def _():
    s = judge0.run(client=sdk(), source_code=PYTHON, stdin="olleh", language=judge0.PYTHON)
    return {"stdout": s.stdout, "status": int(s.status)}


@case("judge0 cpp")
def _():
    s = judge0.run(client=sdk(), source_code=CPP, stdin="2 3", language=judge0.CPP)
    return {"stdout": s.stdout, "status": int(s.status)}


@case("judge0 test cases")
def _():
    subs = judge0.run(
        client=sdk(), source_code=PYTHON, language=judge0.PYTHON, test_cases=[("olleh", "hello"), ("abc", "abc")]
    )
    return [{"stdout": s.stdout, "status": int(s.status)} for s in subs]


# judge0-client: asynchronous, httpx and pydantic models.
from judge0_client import Judge0Client, SingleFileSubmission  # noqa: E402


async def judge0_client_run(source, language_id, stdin):
    async with Judge0Client(base_url=URL, auth_token=AUTHN) as client:
        created = await client.create_submission(
            SingleFileSubmission(source_code=source, language_id=language_id, stdin=stdin)
        )
        while True:
            detail = await client.get_submission(created.token)
            if detail.status.id not in (1, 2):
                return {"stdout": detail.stdout, "status": int(detail.status.id)}
            await asyncio.sleep(0.1)


@case("judge0-client python")
def _():
    return asyncio.run(judge0_client_run(PYTHON, 71, "olleh"))


@case("judge0-client cpp")
def _():
    return asyncio.run(judge0_client_run(CPP, 54, "2 3"))


# judge0api: requests; checks its token with /authenticate, submits to `/submissions/` with
# wait=true, everything base64.
import judge0api  # noqa: E402



def judge0api_client():
    return judge0api.Client(URL, auth_token=AUTHN)


@case("judge0api python")
def _():
    s = judge0api.submission.submit(judge0api_client(), PYTHON.encode(), 71, stdin=b"olleh")
    return {"stdout": text(s.stdout), "status": s.status["id"]}


@case("judge0api cpp")
def _():
    s = judge0api.submission.submit(judge0api_client(), CPP.encode(), 54, stdin=b"2 3")
    return {"stdout": text(s.stdout), "status": s.status["id"]}


@case("judge0api get")
def _():
    client = judge0api_client()
    s = judge0api.submission.submit(client, PYTHON.encode(), 71, stdin=b"olleh")
    again = judge0api.submission.get(client, s.token)
    return {"stdout": text(again.stdout), "status": again.status["id"]}


# judge0-api-wrapper: requests and furl; checks both tokens, refuses language ids that
# /languages does not list.
from judge0_api_wrapper import CreateSubmission, Judge0  # noqa: E402



def wrapper():
    return Judge0(URL, AUTHN, AUTHZ)


def wrapper_result(r):
    return {"stdout": r.stdout, "status": int(r.result)}


@case("judge0-api-wrapper python")
def _():
    client = wrapper()
    s = client.submit(CreateSubmission(source_code=PYTHON, language_id=71, stdin="olleh"))
    return wrapper_result(client.wait_for_completion(s))


@case("judge0-api-wrapper cpp")
def _():
    client = wrapper()
    s = client.submit(CreateSubmission(source_code=CPP, language_id=52, stdin="2 3"))
    return wrapper_result(client.wait_for_completion(s))


@case("judge0-api-wrapper batch")
def _():
    batch = [
        CreateSubmission(source_code=PYTHON, language_id=71, stdin="olleh", expected_output="hello"),
        CreateSubmission(source_code=CPP, language_id=54, stdin="2 3", expected_output="6"),
    ]
    client = wrapper()
    return [wrapper_result(r) for r in client.wait_for_completions(client.submit_batch(batch))]


print(json.dumps(results))
sys.stdout.flush()
