"""Stream JPEG frames over a session's WebSocket and print the completion.

    python3 stream_session.py WEBSOCKET_URL FRAMES_DIR > completion.json

Needs python3-websockets. Sends at most 10 frames per second (one per
100 ms is the server's limit), prints progress on stderr, and prints the
enrollment_complete / authentication_complete message on stdout.
"""
import asyncio
import base64
import glob
import json
import os
import sys

import websockets


async def stream(url, frames_dir):
    frames = sorted(glob.glob(os.path.join(frames_dir, "*.jpg")))
    async with websockets.connect(url, max_size=2**22) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connection_established", hello
        result = None

        async def receive():
            nonlocal result
            async for raw in ws:  # ends when the server closes (1000 after completion)
                msg = json.loads(raw)
                if msg["type"] == "frame_processed":
                    print("progress %d/%d %s" % (msg["frames_processed"], msg["target_samples"],
                                                 msg.get("message", "")), file=sys.stderr)
                elif msg["type"] in ("enrollment_complete", "authentication_complete"):
                    result = msg
                elif msg["type"] == "error":
                    print("error %d: %s" % (msg["code"], msg["error"]), file=sys.stderr)

        receiver = asyncio.ensure_future(receive())
        for path in frames:
            if receiver.done():
                break
            with open(path, "rb") as f:
                image = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
            await ws.send(json.dumps({"type": "frame", "image": image}))
            await asyncio.sleep(0.11)  # a little over 100 ms: at most ~9 frames per second
        await asyncio.wait_for(receiver, 15)
        print("closed with code", ws.close_code, file=sys.stderr)
        return result


if __name__ == "__main__":
    completion = asyncio.run(stream(sys.argv[1], sys.argv[2]))
    if completion is None:
        sys.exit("the session did not complete")
    print(json.dumps(completion))
