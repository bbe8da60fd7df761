"""The firm's desired state: the service layer between the HTTP API and the store.

WordPress's requests are parsed and checked here (`validate`: every problem names its field) and
the firm's rules applied (`people`: localparts, who may be a supervisor or an attorney, what a
departure hands to whom; `matters`: who may hold which capacity, ethical walls, retention and
legal hold), then written through bridge/db/store.py, which holds the SQL and nothing else. Each
function runs inside the caller's DB transaction, so a refusal (BadField) applies nothing.
"""
