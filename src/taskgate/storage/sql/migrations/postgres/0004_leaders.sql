-- taskgate schema 4: who holds each leadership (the scheduler: reaper, schedules).
-- Informational: the lock (an advisory lock, see storage/postgres_leadership.py)
-- decides who leads; the holder writes its row when it takes over, renews renewed_at
-- every few seconds and deletes the row when it lets go. A row whose holder died stays
-- until the next holder takes over.

CREATE TABLE leaders (
    name       TEXT COLLATE "C" PRIMARY KEY,  -- the role: "scheduler"
    holder     TEXT NOT NULL,                 -- the worker id
    node       TEXT NOT NULL,
    pid        INTEGER NOT NULL,              -- the holder's process on its node
    since      DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL
);
