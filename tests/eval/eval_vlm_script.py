"""Scripted VLM and judge handlers for the fake OpenAI server (real HTTP) in eval tests.

Each item's question carries a marker ``[item-id]``; the item's *behaviour* decides
what the scripted policy says on each turn:

- ``solve``: zoom on the synthetic target, then answer the solution;
- ``wrong``: zoom on the target, then answer a wrong character;
- ``slow``: zoom three times (original, then twice into the last observation), answer on turn 4;
- ``loop``: zoom forever;
- ``garbage``: text without any action;
- ``alternate``: ``solve`` on odd-numbered first requests for the item, ``wrong`` on even ones.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from minio3_ext.judge.prompt import parse_data_block
from minio3_ext.testing.fake_openai import Completion

_MARK = re.compile(r"\[(item-[^\]]+)\]")


def _text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def target_box(row: dict, margin: float = 1.0) -> list[float]:
    """Relative box around the target, widened by ``margin`` target sides on each side."""
    x0, y0, x1, y1 = row["target_bbox"]
    w, h = row["width"], row["height"]
    side_x, side_y = (x1 - x0) * margin, (y1 - y0) * margin
    return [max(0.0, (x0 - side_x) / w), max(0.0, (y0 - side_y) / h), min(1.0, (x1 + side_x) / w), min(1.0, (y1 + side_y) / h)]


def zoom(box: list[float], source: str = "original_image", close: bool = True) -> str:
    body = json.dumps({"bbox_2d": [round(v, 4) for v in box], "source": source})
    return f"<think>The target should be here.</think><grounding>{body}" + ("</grounding>" if close else "")


class ScriptedVLM:
    def __init__(self, rows: dict[str, dict], behaviours: dict[str, str]):
        self.rows = rows
        self.behaviours = behaviours
        self.first_requests: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> Any:
        messages = request["messages"]
        text = " ".join(p.get("text", "") for p in messages[1]["content"] if isinstance(p, dict))
        item_id = _MARK.search(text).group(1)
        row, behaviour = self.rows[item_id], self.behaviours[item_id]
        turn = sum(m["role"] == "assistant" for m in messages)
        attempt = ""
        if behaviour == "alternate":  # the attempt number travels in the episode's own history
            if turn == 0:
                with self.lock:
                    n = self.first_requests[item_id] = self.first_requests.get(item_id, 0) + 1
            else:
                n = int(re.search(r"attempt (\d+)", _text(messages[2])).group(1))
            attempt = f"<think>attempt {n}</think>"
            behaviour = "solve" if n % 2 else "wrong"
        if behaviour == "garbage":
            return "I really like this picture, it has nice colours."
        if behaviour == "loop":
            return Completion(zoom(target_box(row, 3.0), close=False), finish_reason="stop")
        if behaviour == "slow":
            if turn == 0:
                return zoom(target_box(row, 4.0))
            if turn in (1, 2):
                return zoom([0.1, 0.1, 0.9, 0.9], source=f"observation_{turn}")
            return f"<think>Found it.</think><answer>{row['solution']}</answer>"
        if turn == 0:  # the server drops the stop string; the policy must put it back
            return Completion(attempt + zoom(target_box(row), close=False), finish_reason="stop")
        answer = row["solution"] if behaviour == "solve" else "#"
        return f"<think>I can read it now.</think><answer>{answer}</answer>"


def exact_judge(request: dict) -> str:
    """Judge handler: Score 1 when the prediction equals the ground truth."""
    _, data = parse_data_block(request["messages"][-1]["content"])
    return "Score: 1" if data["prediction"].strip() == data["ground_truth"].strip() else "Score: 0"


def marked_items(rows: list[dict]) -> list[dict]:
    """Dataset rows with the ``[item-id]`` marker added to each question."""
    out = []
    for row in rows:
        item_id = "item-" + row["doc_id"]
        out.append({**row, "doc_id": item_id, "problem": row["problem"] + f" [{item_id}]"})
    return out


def local_policy(handler):
    """The handler as an in-process policy (no HTTP, no image encoding): for tests
    that exercise episode logic rather than the wire format."""
    from minio3_ext.eval.openai_policy import restore_stop, to_openai_messages

    async def policy(messages):
        reply = handler({"messages": to_openai_messages(messages, encode=lambda image: "data:,")})
        text = reply.text if isinstance(reply, Completion) else reply
        return restore_stop(text)

    return policy
