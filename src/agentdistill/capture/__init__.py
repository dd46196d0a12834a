"""Capture: a user's own MAS -> our trace format, so every later stage (verify, datasets, train) reads it.

Two doors: `agentdistill proxy` records an unmodified MAS live, sitting in front of its OpenAI-compatible
endpoint (proxy.py); `agentdistill import-logs` converts logs it already has (import_logs.py). Both tag roles
the same way (roles.py), build the same call and episode records (records.py) and write them through the same
TraceStore-backed writer (writer.py); the proxy groups live calls into episodes (episodes.py) and reassembles
streamed answers (streaming.py).
"""
