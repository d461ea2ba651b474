"""A local HTTP server that records the JSON bodies the real SDKs send and answers minimally.

Routes: POST /v1/chat/completions (OpenAI chat), POST /v1/responses (OpenAI responses),
POST /v1/messages (Anthropic). Each answer is the smallest valid response of its API, with
the usage given to the server (so trackers can reconcile against it).

    with WireServer() as server:
        openai.OpenAI(base_url=server.openai_url, api_key="x").chat.completions.create(...)
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="x").messages.create(...)
        server.bodies      # [(path, body dict), ...] in arrival order
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

UsageFn = Callable[[str, Dict[str, Any]], Dict[str, Any]]


def _chat(body: Dict[str, Any], usage: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "m"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens", 10),
            "completion_tokens": 1,
            "total_tokens": usage.get("prompt_tokens", 10) + 1,
            "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
        },
    }


def _responses(body: Dict[str, Any], usage: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": body.get("model", "m"),
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 10),
            "input_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.get("prompt_tokens", 10) + 1,
        },
    }


def _messages(body: Dict[str, Any], usage: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "m"),
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.get("input_tokens", 10),
            "output_tokens": 1,
            "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
            "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
        },
    }


_ROUTES = {
    "/v1/chat/completions": _chat,
    "/v1/responses": _responses,
    "/v1/messages": _messages,
}


class WireServer:
    def __init__(self, usage: Optional[UsageFn] = None):
        self.bodies: List[Tuple[str, Dict[str, Any]]] = []
        self.headers: List[Dict[str, str]] = []
        self._usage = usage or (lambda path, body: {})
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                server.bodies.append((path, body))
                server.headers.append(dict(self.headers))
                route = _ROUTES.get(path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = json.dumps(route(body, server._usage(path, body))).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return self.anthropic_url + "/v1"

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
