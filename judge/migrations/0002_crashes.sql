-- Claims of a submission that ended with their worker gone (killed, crashed or panicking)
-- before a result: after WORKER_MAX_CRASHES of them the submission ends as Internal Error
-- instead of taking down one worker after another.
ALTER TABLE submissions ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
