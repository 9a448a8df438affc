"""Decrypt the encrypted_data of a completion with the client's secret key.

    SECRET_KEY=sk_... python3 decrypt_result.py < completion.json

Reads a completion message (or just its encrypted_data object) on stdin and
prints the plaintext JSON. Needs python3-cryptography. Run it on your
backend: the secret key never goes to a browser.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def result_key(secret_key: str) -> bytes:
    # key = SHA-256 of the secret key's UTF-8 bytes
    return hashlib.sha256(secret_key.encode("utf-8")).digest()


def decrypt_cbc(encrypted_payload: str, secret_key: str) -> dict:
    # AES-256-CBC: base64(IV(16) || ciphertext), PKCS7 padding
    data = base64.b64decode(encrypted_payload)
    decryptor = Cipher(algorithms.AES(result_key(secret_key)), modes.CBC(data[:16])).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return json.loads(unpadder.update(padded) + unpadder.finalize())


def decrypt_gcm(encrypted_payload: str, secret_key: str) -> dict:
    # AES-256-GCM: base64(nonce(12) || ciphertext || tag(16)); raises InvalidTag
    # if a single bit of the payload was changed
    data = base64.b64decode(encrypted_payload)
    return json.loads(AESGCM(result_key(secret_key)).decrypt(data[:12], data[12:], None))


def decrypt(encrypted_data: dict, secret_key: str) -> dict:
    method = encrypted_data["encryption_method"]
    if method == "AES-256-GCM":
        return decrypt_gcm(encrypted_data["encrypted_payload"], secret_key)
    if method == "AES-256-CBC":
        return decrypt_cbc(encrypted_data["encrypted_payload"], secret_key)
    raise ValueError("unknown encryption_method " + method)


if __name__ == "__main__":
    message = json.load(sys.stdin)
    print(json.dumps(decrypt(message.get("encrypted_data", message), os.environ["SECRET_KEY"])))
