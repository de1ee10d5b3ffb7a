#!/usr/bin/env python3
"""charrnn serve from the official OpenAI Python client, unmodified: only base_url changes.

    pip install openai
    charrnn serve runs/shakespeare/best.safetensors --port 8080
    python3 examples/openai_client.py http://127.0.0.1:8080/v1 shakespeare

Prints a whole completion, then streams another one character chunk by chunk; then the same
for a chat (its messages become a prompt through the server's chat template).
"""
import sys

from openai import OpenAI

base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1"
model = sys.argv[2] if len(sys.argv) > 2 else None
client = OpenAI(base_url=base_url, api_key="not-needed")  # charrnn serve has no keys
if model is None:
    model = client.models.list().data[0].id

# A whole completion.
done = client.completions.create(model=model, prompt="ROMEO:", max_tokens=200, temperature=0.8, seed=7)
print("WHOLE", repr(done.choices[0].text), done.choices[0].finish_reason, done.usage.completion_tokens)

# A streamed one: the same text, in pieces.
pieces = []
for chunk in client.completions.create(model=model, prompt="ROMEO:", max_tokens=200, temperature=0.8, seed=7,
                                       stream=True):
    if chunk.choices:
        pieces.append(chunk.choices[0].text)
print("STREAM", repr("".join(pieces)), len(pieces))

# A chat, whole and streamed: the same reply.
messages = [{"role": "user", "content": "Good morrow."}]
chat = client.chat.completions.create(model=model, messages=messages, max_tokens=1000, temperature=0.8, seed=3)
print("CHAT WHOLE", repr(chat.choices[0].message.content), chat.choices[0].finish_reason)
pieces = []
for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=1000, temperature=0.8, seed=3,
                                            stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
print("CHAT STREAM", repr("".join(pieces)), len(pieces))
