"""The backend's check after the browser reports a completion: take the
outcome from the server, not from the browser, and decrypt it.

    BASE_URL=... API_KEY=... SECRET_KEY=... python3 verify_session.py SESSION_TOKEN

Prints {"status", "authenticated", "user_id", "decrypted"} and exits 0 only
when the session completed and the decrypted result belongs to it.
"""
import json
import os
import sys
import urllib.request

from decrypt_result import decrypt  # the sample beside this one


def call(method, path, body=None, token=None):
    req = urllib.request.Request(os.environ["BASE_URL"] + path, method=method,
                                 data=json.dumps(body).encode() if body else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def verify(session_token):
    secret = os.environ["SECRET_KEY"]
    token = call("POST", "/api/auth/client/",
                 {"api_key": os.environ["API_KEY"], "secret_key": secret})["token"]
    session = call("GET", "/api/auth/sessions/%s/" % session_token, token=token)
    result = session["result"]
    if result is None:  # not finished (pending, active) or expired
        return {"status": session["status"], "authenticated": False}
    plain = decrypt(result["encrypted_data"], secret)
    # the plaintext must belong to this session (a relayed payload from
    # another session of yours would carry another session_token)
    assert plain["session_token"] == session_token
    return {"status": session["status"],
            "authenticated": session["status"] == "completed",
            "user_id": result.get("user_id"), "decrypted": plain}


if __name__ == "__main__":
    outcome = verify(sys.argv[1])
    print(json.dumps(outcome))
    sys.exit(0 if outcome["authenticated"] else 1)
