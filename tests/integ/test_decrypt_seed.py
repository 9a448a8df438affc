#!/usr/bin/env python3
"""R10 contract: the seed's client-side decrypt_response, copied verbatim from
seed/WEBSOCKET_IMPLEMENTATION.md (its function body unchanged; the seed's
snippet forgets `import json`, which is added at module level), must decrypt
the server's AES-256-CBC payloads. Payloads come from C helpers:
  unit_test_crypto --emit DIR   envelopes of fixed plaintexts (crypto/)
  unit_test_app_engine --emit DIR  real completions (app/, real photos), if built
GCM payloads are checked with the documented layout base64(nonce||ct||tag).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

# ---- verbatim from the seed (imports and function) --------------------------
import base64
import hashlib
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import padding

def decrypt_response(encrypted_payload: str, secret_key: str) -> dict:
    # Decode base64
    encrypted_data = base64.b64decode(encrypted_payload)
    
    # Extract IV dan ciphertext
    iv = encrypted_data[:16]
    ciphertext = encrypted_data[16:]
    
    # Derive key dari secret key
    key = hashlib.sha256(secret_key.encode()).digest()
    
    # Decrypt
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv), backend=default_backend())
    decryptor = cipher.decryptor()
    padded_data = decryptor.update(ciphertext) + decryptor.finalize()
    
    # Unpad
    unpadder = padding.PKCS7(128).unpadder()
    data = unpadder.update(padded_data) + unpadder.finalize()
    
    # Parse JSON
    return json.loads(data.decode('utf-8'))
# ---- end of the seed's code -------------------------------------------------

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402


def build_dir():
    d = os.environ.get("FA_BUILD_DIR")
    if not d:
        print("FA_BUILD_DIR not set (run through ctest)", file=sys.stderr)
        sys.exit(1)
    return d


def gcm_decrypt(payload, secret_key):
    raw = base64.b64decode(payload)
    key = hashlib.sha256(secret_key.encode()).digest()
    return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], None).decode("utf-8"))


def check_envelopes(path):
    n_cbc = n_gcm = 0
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            secret = base64.b64decode(e["secret_b64"]).decode("utf-8")
            plain = json.loads(base64.b64decode(e["plain_b64"]).decode("utf-8"))
            if e["method"] == "AES-256-CBC":
                got = decrypt_response(e["payload"], secret)
                assert got == plain, (got, plain)
                n_cbc += 1
            else:
                assert e["method"] == "AES-256-GCM", e["method"]
                assert gcm_decrypt(e["payload"], secret) == plain
                # The seed's CBC function cannot read a GCM payload as the plaintext.
                try:
                    assert decrypt_response(e["payload"], secret) != plain
                except Exception:
                    pass
                n_gcm += 1
    assert n_cbc >= 12 and n_gcm >= 12, (n_cbc, n_gcm)
    return n_cbc, n_gcm


def check_completions(path):
    """Real completions from app/: decrypt with the seed function and check
    every field of R10's plaintext against what the app reported."""
    n = 0
    with open(path) as f:
        for line in f:
            c = json.loads(line)
            if c["encryption_method"] == "AES-256-CBC":
                got = decrypt_response(c["encrypted_payload"], c["secret_key"])
            else:
                got = gcm_decrypt(c["encrypted_payload"], c["secret_key"])
            assert got["session_type"] == c["session_type"], got
            assert got["session_token"] == c["session_token"], got
            assert got["id"] == c["id"], (got, c)
            ts = got["timestamp"]
            assert len(ts) == 24 and ts[10] == "T" and ts[19] == "." and ts.endswith("Z"), ts
            if c["session_type"] == "authentication":
                assert abs(got["confidence"] - c["confidence"]) < 1e-3, (got, c)
                assert 0.0 <= got["confidence"] <= 1.0
            else:
                assert "confidence" not in got
            n += 1
    return n


def check_cbc_tamper(path):
    """Flipping one IV byte rewrites the id and still decrypts (R10 has no
    integrity); flipping a GCM byte makes decryption fail."""
    with open(path) as f:
        lines = [json.loads(x) for x in f]
    e = next(x for x in lines if x["method"] == "AES-256-CBC"
             and b"3f1c2b7e" in base64.b64decode(x["plain_b64"]))
    secret = base64.b64decode(e["secret_b64"]).decode("utf-8")
    raw = bytearray(base64.b64decode(e["payload"]))
    raw[7] ^= ord("3") ^ ord("9")  # '{"id":"' is 7 bytes: first id character
    got = decrypt_response(base64.b64encode(bytes(raw)).decode(), secret)
    assert got["id"].startswith("9f1c2b7e"), got
    g = next(x for x in lines if x["method"] == "AES-256-GCM")
    secret = base64.b64decode(g["secret_b64"]).decode("utf-8")
    raw = bytearray(base64.b64decode(g["payload"]))
    for i in range(len(raw)):
        raw[i] ^= 1
        try:
            gcm_decrypt(base64.b64encode(bytes(raw)).decode(), secret)
            raise AssertionError("tampered GCM payload accepted at byte %d" % i)
        except AssertionError:
            raise
        except Exception:
            pass
        raw[i] ^= 1


def main():
    bd = build_dir()
    with tempfile.TemporaryDirectory() as tmp:
        helper = os.path.join(bd, "tests", "unit_test_crypto")
        subprocess.run([helper, "--emit", tmp], check=True)
        n_cbc, n_gcm = check_envelopes(os.path.join(tmp, "envelopes.jsonl"))
        check_cbc_tamper(os.path.join(tmp, "envelopes.jsonl"))
        print("envelopes: %d CBC decrypted by the seed's decrypt_response, %d GCM" % (n_cbc, n_gcm))
        app_helper = os.path.join(bd, "tests", "unit_test_app_engine")
        if os.path.exists(app_helper):
            subprocess.run([app_helper, "--emit", tmp], check=True)
            n = check_completions(os.path.join(tmp, "completions.jsonl"))
            assert n >= 3, n
            print("completions: %d real app results decrypted" % n)
        else:
            print("unit_test_app_engine not built: real completions skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
