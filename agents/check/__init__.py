"""`nudge campaigns check`: a project folder checked before it goes live, every problem named by
file, line and fix. Pure except `agents/check/folder.py`, which reads the files."""
