-- PostgreSQL only (a function that reads a session in one round trip under row-level security).
-- SQLite reads the same row with the same join in an ordinary transaction; nothing to do here.
SELECT 1;
