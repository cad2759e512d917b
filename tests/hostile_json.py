"""Hypothesis strategies for hostile request bodies, as raw text (so they can be what JSON libraries
refuse to write: repeated keys, NaN, lone surrogates, numbers of thousands of digits).

Shared by the parser's unit tests, the gateway handler fuzz and the fuzz over the local front door.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

TWO_MB = 2 * 1024 * 1024
USER_TURN = '[{"role": "user", "content": "hi"}]'


def nested(depth: int, kind: str) -> str:
    """Arrays, objects or both alternating, `depth` levels deep, around a 0."""
    opens = {"array": ["["], "object": ['{"k":'], "mixed": ["[", '{"k":']}[kind]
    closes = {"[": "]", '{"k":': "}"}
    chosen = [opens[i % len(opens)] for i in range(depth)]
    return "".join(chosen) + "0" + "".join(closes[o] for o in reversed(chosen))


deep_nesting = st.builds(nested, st.integers(65, 6000), st.sampled_from(["array", "object", "mixed"]))
huge_numbers = st.one_of(
    st.integers(101, 6000).map(lambda n: "9" * n),
    st.integers(101, 6000).map(lambda n: "-1" + "0" * n),
    st.integers(309, 99999).map(lambda e: f"1e{e}"),
    st.integers(101, 6000).map(lambda n: "0." + "3" * n),
)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "[NaN]", '{"x": -Infinity}'])
lone_surrogates = st.one_of(
    st.integers(0xD800, 0xDFFF).map(lambda c: f'"x\\u{c:04x}y"'),
    st.just('"\\udc00\\ud800"'),  # a pair in the wrong order
    st.just('{"\\ud800": 1}'),  # in a key
)
nul_bytes = st.sampled_from(['"a\\u0000b"', '"\\u0000"', '"a\x00b"', "\x00", '{"k\\u0000": "v"}'])
big_strings = st.sampled_from([TWO_MB, TWO_MB + 7]).map(lambda n: json.dumps("x" * n))
odd_text = st.text(max_size=64).map(lambda s: json.dumps(s, ensure_ascii=False))
duplicate_keys = st.sampled_from(['{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', '[{"x": 0, "x": 0}]'])

hostile_values = st.one_of(
    deep_nesting,
    huge_numbers,
    non_finite,
    lone_surrogates,
    nul_bytes,
    duplicate_keys,
    odd_text,
    big_strings,
)


def _chat(model: str = '"chat"', content: str = '"hi"', extra: str = "") -> str:
    return f'{{"model": {model}, "messages": [{{"role": "user", "content": {content}}}]{extra}}}'


hostile_bodies = st.one_of(
    hostile_values,
    hostile_values.map(lambda v: _chat(content=v)),
    hostile_values.map(lambda v: _chat(model=v)),
    hostile_values.map(lambda v: _chat(extra=f', "metadata": {v}')),
    st.tuples(
        st.sampled_from(["temperature", "max_tokens", "top_p", "stop", "user", "n", "seed"]), hostile_values
    ).map(lambda kv: _chat(extra=f', "{kv[0]}": {kv[1]}')),
    hostile_values.map(lambda v: f'{{"model": "chat", "model": {v}, "messages": {USER_TURN}}}'),
    st.builds(
        lambda body, cut: body[:cut], hostile_values.map(lambda v: _chat(content=v)), st.integers(0, 200)
    ),
)
