"""A scripted stand-in for `python -m llama_cpp.server`, for the unit tests of the local-model
supervisor only (MOSSFORGE_LLAMA_SERVER_MODULE=fake_llama_server). It takes the same flags, answers
/v1/models and /v1/chat/completions with a fixed reply naming its port, and exits (like a crashed
server) after FAKE_LLAMA_DIE_AFTER chat requests when that is set."""

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
for flag in ("--model", "--model_alias", "--n_threads", "--n_threads_batch", "--n_ctx", "--host",
             "--interrupt_requests"):
    parser.add_argument(flag)
parser.add_argument("--port", type=int)
args = parser.parse_args()
die_after = int(os.environ.get("FAKE_LLAMA_DIE_AFTER", "0"))
served = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": args.model_alias}]})

    def do_POST(self):
        global served
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        served += 1
        if die_after and served > die_after:
            os._exit(3)  # a crash mid-request: the connection drops
        self._json({"id": "x", "object": "chat.completion", "created": 0, "model": args.model_alias,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                 "content": f"port {args.port}; format {json.dumps(request.get('response_format'))}"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


print("fake llama server ready", flush=True)
HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
