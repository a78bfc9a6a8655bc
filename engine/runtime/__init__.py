"""The running messenger's moving parts: event fan-out, the inbox (catch-up and live), the outbox pump and the
connection supervisor. Use them through :mod:`engine.messenger`; nothing outside ``engine`` imports this package.
"""
