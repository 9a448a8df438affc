#!/usr/bin/env python3
"""Operator flow on a running server: clients created with the CLI while
faceauthd serves (a separate process writing the same SQLite file) log in at
once, also after enrollments have run on several workers. This once failed:
opening the store closed a descriptor of the database file, which dropped
the POSIX locks of the workers' SQLite connections and corrupted the
database ("database disk image is malformed", 500, then 401 for good)."""
import asyncio

import fa_integ as fi  # first: it re-runs the test under /usr/bin/python3 if needed


def test_clients_created_while_serving():
    s = fi.Server(args=["--workers", "2"]).start()
    try:
        c = s.create_client("first")
        tok = s.login(c)
        for i in range(2):  # completions write from both workers
            ses = s.session(tok, "enrollment", user_id="u%d" % i)
            frames = fi.clip_frames("studio_man_blink" if i == 0 else "interview_man_blink_headmotion")
            code = asyncio.run(fi.run_session(ses["websocket_url"], frames))[2]
            assert code == 1000, code
        for i in range(4):
            d = s.create_client("later%d" % i)
            r = s.post("/api/auth/client/", {"api_key": d["api_key"], "secret_key": d["secret_key"]})
            assert r.status_code == 200, (i, r.status_code, r.text)
        log = s.log_text()
        assert "malformed" not in log, log[-3000:]
    finally:
        s.cleanup()


if __name__ == "__main__":
    fi.run_tests(own=[test_clients_created_while_serving])
