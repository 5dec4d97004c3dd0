"""Action parsing and rendering in both dialects and all coordinate systems."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minio3_ext.core import ORIGINAL, Answer, Invalid, ToolCall, Zoom
from minio3_ext.core.dialect import get_dialect

DIALECTS = ("minio3", "hermes")
COORDS = ("relative", "thousand", "pixel")
VIEW_SIZES = {ORIGINAL: (800, 400), "observation_1": (200, 100), "observation_2": (56, 280)}
ACTION_TYPES = (Zoom, ToolCall, Answer, Invalid)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def zoom_text(args, dialect="minio3", prose="") -> str:
    """A zoom turn whose arguments object is the text ``args``, ``prose`` after the JSON."""
    if dialect == "minio3":
        return f"<think>look</think><grounding>{args}{prose}</grounding>"
    return '<think>look</think><tool_call>{"name": "zoom", "arguments": ' + args + "}" + prose + "</tool_call>"


def check_never_raises(text, dialect, coords, clamp, num_observations, with_views):
    action = get_dialect(dialect, coords=coords, clamp=clamp).parse(text, num_observations=num_observations, view_sizes=VIEW_SIZES if with_views else None)
    assert isinstance(action, ACTION_TYPES)
    if isinstance(action, Invalid):
        assert isinstance(action.reason, str) and 0 < len(action.reason) < 400
    if isinstance(action, Zoom):
        x0, y0, x1, y1 = action.bbox
        assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
    return action


parse_options = dict(
    dialect=st.sampled_from(DIALECTS),
    coords=st.sampled_from(COORDS),
    clamp=st.booleans(),
    num_observations=st.sampled_from([None, 0, 1, 2]),
    with_views=st.booleans(),
)


# -- never raises -----------------------------------------------------------------

TAGGY = st.lists(st.sampled_from(list('{}[]"\':,. -+0123456789eEnaNIfTrueNo_x\\\n') + [
    "<answer>", "</answer>", "<grounding>", "</grounding>", "<tool_call>", "</tool_call>",
    '"bbox_2d"', '"source"', '"name"', '"arguments"', '"zoom"', '"observation_9"', "'original_image'",
    "NaN", "Infinity", "1" + "0" * 400, "9" * 5000, "[" * 3000,
]), max_size=40).map("".join)


@FAST
@given(text=st.text(), **parse_options)
def test_arbitrary_text_never_raises(text, dialect, coords, clamp, num_observations, with_views):
    check_never_raises(text, dialect, coords, clamp, num_observations, with_views)


@FAST
@given(text=TAGGY, **parse_options)
def test_tag_soup_never_raises(text, dialect, coords, clamp, num_observations, with_views):
    check_never_raises(text, dialect, coords, clamp, num_observations, with_views)


VALID_TEXTS = [
    get_dialect("minio3").render(Zoom((0.1, 0.2, 0.3, 0.4), "observation_1")),
    get_dialect("hermes").render(Zoom((0.1, 0.2, 0.3, 0.4))),
    get_dialect("hermes").render(ToolCall("rotate", {"angle": 90}, "observation_2")),
    "<grounding>{'bbox_2d': [100, 200, 300, 400], 'source': 'original_image'}</grounding> trailing",
    '<tool_call>{"name": "zoom", "arguments": "{\\"bbox_2d\\": [1, 2, 30, 40]}"}</tool_call>',
    "<think>done</think><answer>the red car</answer>",
]


@st.composite
def mutated(draw):
    """A valid action with a few random edits: insertions, deletions, replacements."""
    text = draw(st.sampled_from(VALID_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(TAGGY) if op != "delete" else ""
        text = text[:i] + piece + (text[i:] if op == "insert" else text[j:])
    return text


@FAST
@given(text=mutated(), **parse_options)
def test_mutated_valid_actions_never_raise(text, dialect, coords, clamp, num_observations, with_views):
    check_never_raises(text, dialect, coords, clamp, num_observations, with_views)


@pytest.mark.parametrize("value", [None, 5, b"<answer>x</answer>", ["<answer>x</answer>"]])
def test_non_text_is_invalid_not_an_exception(value):
    action = get_dialect().parse(value)
    assert isinstance(action, Invalid) and not action.attempted and "text" in action.reason


def test_unknown_dialect_or_coords_is_a_config_error():
    with pytest.raises(ValueError, match="dialect"):
        get_dialect("qwen").parse("<answer>a</answer>")
    with pytest.raises(ValueError, match="coordinate system"):
        get_dialect(coords="percent").parse("<answer>a</answer>")


# -- round trips ---------------------------------------------------------------------

unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def zooms(draw):
    xs = sorted(draw(st.lists(unit, min_size=2, max_size=2, unique=True)))
    ys = sorted(draw(st.lists(unit, min_size=2, max_size=2, unique=True)))
    source = draw(st.sampled_from([ORIGINAL, "observation_1", "observation_2", "observation_3"]))
    return Zoom((xs[0], ys[0], xs[1], ys[1]), source)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@st.composite
def tool_calls(draw):
    name = draw(st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True).filter(lambda n: n != "zoom"))
    keys = st.text(max_size=10).filter(lambda k: k != "source")
    arguments = draw(st.dictionaries(keys, json_values, max_size=4))
    assume("</tool_call>" not in json.dumps(arguments))
    source = draw(st.sampled_from([ORIGINAL, "observation_1", "observation_3"]))
    return ToolCall(name, arguments, source)


answers = st.text().map(str.strip).filter(lambda t: "</answer>" not in t).map(Answer)


@FAST
@given(action=st.one_of(zooms(), answers, tool_calls()), dialect=st.sampled_from(DIALECTS))
def test_render_then_parse_round_trips(action, dialect):
    text = get_dialect(dialect).render(action)
    assert get_dialect(dialect).parse(text, num_observations=3) == action
    # a thought before and prose after the action change nothing
    assert get_dialect(dialect).parse("<think>I should act.</think>\n" + text + "\nDone.", num_observations=3) == action


def test_zoom_renders_in_each_dialect_exactly():
    z = Zoom((0.25, 0.5, 0.75, 1.0), "observation_2")
    assert get_dialect("minio3").render(z) == '<grounding>{"bbox_2d": [0.25, 0.5, 0.75, 1.0], "source": "observation_2"}</grounding>'
    hermes = get_dialect("hermes").render(z)
    assert hermes.startswith("<tool_call>") and hermes.endswith("</tool_call>")
    assert json.loads(hermes[len("<tool_call>"):-len("</tool_call>")]) == {
        "name": "zoom", "arguments": {"bbox_2d": [0.25, 0.5, 0.75, 1.0], "source": "observation_2"}}


def test_render_rejects_invalid_actions_and_unknown_dialects():
    with pytest.raises(TypeError):
        get_dialect().render(Invalid("x"))
    with pytest.raises(ValueError, match="dialect"):
        get_dialect("qwen").render(Answer("x"))


# -- tolerant JSON ---------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(order=st.permutations(["bbox", "source", "extra"]), quote=st.sampled_from(['"', "'"]),
       space=st.sampled_from(["", " ", "  ", "\n", "\t "]), prose=st.sampled_from(["", " so I zoom.", "}} hm {"]),
       dialect=st.sampled_from(DIALECTS))
def test_tolerant_json_any_order_quotes_spacing_prose(order, quote, space, prose, dialect):
    q, s = quote, space
    parts = {
        "bbox": f"{q}bbox_2d{q}{s}:{s}[{s}0.1{s},{s}0.2{s},0.6,{s}0.9{s}]",
        "source": f"{q}source{q}:{s}{q}observation_1{q}",
        "extra": f"{q}sure{q}:{s}True,{s}{q}why{q}:{s}None",
    }
    body = "{" + s + ("," + s).join(parts[k] for k in order) + s + "}"
    action = get_dialect(dialect).parse(zoom_text(body, dialect, prose), num_observations=1)
    assert action == Zoom((0.1, 0.2, 0.6, 0.9), "observation_1")


@pytest.mark.parametrize("body, expected", [
    ("{'bbox_2d': [0, 0, 1, 1], 'source': None}", Zoom((0.0, 0.0, 1.0, 1.0), ORIGINAL)),
    ("{'bbox_2d': ['0.5', ' 0.5 ', 1, 1]}", Zoom((0.5, 0.5, 1.0, 1.0), ORIGINAL)),
    ("{'bbox_2d': [0, 0, 1, 1], 'note': 'it\\'s {here}'}", Zoom((0.0, 0.0, 1.0, 1.0), ORIGINAL)),
    ('{"bbox": [0, 0, 0.5, 0.5], "source": "Observation 1"}', Zoom((0.0, 0.0, 0.5, 0.5), "observation_1")),
])
def test_tolerant_json_cases(body, expected):
    assert get_dialect().parse(zoom_text(body), num_observations=1) == expected


def test_bbox_may_be_a_quoted_list():
    assert get_dialect().parse(zoom_text('{"bbox_2d": "[0.1, 0.2, 0.5, 0.6]"}')) == Zoom((0.1, 0.2, 0.5, 0.6))
    bad = get_dialect().parse(zoom_text('{"bbox_2d": "' + "[" * 5000 + '"}'))
    assert isinstance(bad, Invalid) and "list of 4 numbers" in bad.reason


def test_answer_tag_is_case_insensitive_like_extract_answer():
    assert get_dialect().parse("<think>x</think><Answer> Blue </ANSWER>") == Answer("Blue")


def test_hermes_arguments_may_be_a_json_string():
    text = '<tool_call>{"name": "zoom", "arguments": "{\\"bbox_2d\\": [0.5, 0, 1, 0.5]}"}</tool_call>'
    assert get_dialect("hermes").parse(text) == Zoom((0.5, 0.0, 1.0, 0.5))


def test_unclosed_grounding_still_parses():
    """Generation may stop right before ``</grounding>``: the body is still usable."""
    assert get_dialect().parse('<grounding>{"bbox_2d": [0, 0, 0.5, 0.5]}') == Zoom((0.0, 0.0, 0.5, 0.5))


def test_never_evaluates_model_text(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"{{'bbox_2d': [__import__('os').system('touch {marker}'), 0, 1, 1]}}",
        f"{{'bbox_2d': __import__('pathlib').Path('{marker}').touch(), 'source': 'original_image'}}",
        "{'bbox_2d': [0, 0, 1, 1], 'source': open('/etc/passwd').read()}",
    ]
    for body in payloads:
        for dialect in DIALECTS:
            action = get_dialect(dialect).parse(zoom_text(body, dialect))
            assert isinstance(action, Invalid), (body, action)
    assert not marker.exists()


# -- invalid actions, with reasons the model can read -----------------------------------

@pytest.mark.parametrize("body, fragment", [
    ('{"bbox_2d": [0.1, 0.2, 1.3, 0.4]}', "outside the valid range [0, 1]"),
    ('{"bbox_2d": [-0.1, 0.2, 0.3, 0.4]}', "outside the valid range [0, 1]"),
    ('{"bbox_2d": [0.5, 0.2, 0.3, 0.4]}', "need x0 < x1 and y0 < y1"),
    ('{"bbox_2d": [0.1, 0.5, 0.3, 0.4]}', "inverted"),
    ('{"bbox_2d": [0.3, 0.2, 0.3, 0.4]}', "empty"),
    ('{"bbox_2d": [NaN, 0.2, 0.3, 0.4]}', "finite"),
    ('{"bbox_2d": ["nan", 0.2, 0.3, 0.4]}', "finite"),
    ('{"bbox_2d": [0.1, 0.2, Infinity, 0.4]}', "finite"),
    ('{"bbox_2d": [0.1, 0.2, 1e999, 0.4]}', "finite"),
    ('{"bbox_2d": [0.1, 0.2, 1' + "0" * 400 + ', 0.4]}', "must be numbers"),
    ('{"bbox_2d": [0.1, 0.2, 0.3]}', "list of 4 numbers"),
    ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4, 0.5]}', "list of 4 numbers"),
    ('{"bbox_2d": 0.5}', "list of 4 numbers"),
    ('{"bbox_2d": [0.1, true, 0.3, 0.4]}', "must be numbers"),
    ('{"bbox_2d": [0.1, "left", 0.3, 0.4]}', "must be numbers"),
    ('{"bbox_2d": [0.1, [0.2], 0.3, 0.4]}', "must be numbers"),
    ('{"source": "original_image"}', "missing 'bbox_2d'"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": "observation_9"}', "only observation_1..observation_2 exist"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": "observation_0"}', "does not exist"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": "observation_' + "9" * 60 + '"}', "unknown source"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": "observation_' + "9" * 5000 + '"}', "unknown source"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": "the car"}', "unknown source"),
    ('{"bbox_2d": [0, 0, 1, 1], "source": 3}', "'source' must be a string"),
    ('{"bbox_2d": [0, 0, 1, 1],}', "malformed JSON object"),
])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_invalid_boxes_have_readable_reasons(body, fragment, dialect):
    action = get_dialect(dialect).parse(zoom_text(body, dialect), num_observations=2)
    assert isinstance(action, Invalid) and action.attempted
    assert fragment in action.reason
    assert len(action.reason) < 300


@pytest.mark.parametrize("text, fragment", [
    ("<grounding>I will zoom now</grounding>", "no JSON object"),
    ('<grounding>{"bbox_2d": [0, 0, 1, 1]</grounding>', "unterminated JSON object"),
    ("<tool_call>zoom(0, 0, 1, 1)</tool_call>", "no JSON object"),
    ('<tool_call>{"name": "zoom", "arguments": "[0, 0, 1, 1]"}</tool_call>', "tool arguments"),
])
def test_unreadable_action_bodies(text, fragment):
    action = get_dialect().parse(text)
    assert isinstance(action, Invalid) and action.attempted and fragment in action.reason


def test_unknown_source_when_no_observation_exists_yet():
    action = get_dialect().parse(zoom_text('{"bbox_2d": [0, 0, 1, 1], "source": "observation_1"}'), num_observations=0)
    assert isinstance(action, Invalid) and "no observations exist yet" in action.reason


def test_no_action_is_not_attempted():
    for dialect, how in zip(DIALECTS, ["<grounding>", "zoom tool call"]):
        action = get_dialect(dialect).parse("<think>hmm, the sign is hard to read</think>")
        assert isinstance(action, Invalid) and not action.attempted and how in action.reason


def test_grounding_is_not_an_action_in_hermes_dialect():
    action = get_dialect("hermes").parse(zoom_text('{"bbox_2d": [0, 0, 1, 1]}', "minio3"))
    assert isinstance(action, Invalid) and not action.attempted


def test_first_action_wins_and_unterminated_answer():
    zoom = zoom_text('{"bbox_2d": [0, 0, 1, 1]}')
    assert get_dialect().parse("<answer>cat</answer>" + zoom) == Answer("cat")
    assert isinstance(get_dialect().parse(zoom + "<answer>cat</answer>"), Zoom)
    bad = get_dialect().parse("<answer>cat")
    assert isinstance(bad, Invalid) and bad.attempted and "</answer>" in bad.reason


def test_tool_call_without_name_or_object_arguments():
    action = get_dialect("hermes").parse('<tool_call>{"arguments": {"angle": 90}}</tool_call>')
    assert isinstance(action, Invalid) and "name" in action.reason
    action = get_dialect("hermes").parse('<tool_call>{"name": "rotate", "arguments": [90]}</tool_call>')
    assert isinstance(action, Invalid) and "JSON object" in action.reason


def test_tool_call_source_is_validated_and_not_duplicated_in_arguments():
    text = '<tool_call>{"name": "rotate", "arguments": {"angle": 90, "source": "observation_1"}}</tool_call>'
    assert get_dialect("hermes").parse(text, num_observations=1) == ToolCall("rotate", {"angle": 90}, "observation_1")
    bad = get_dialect("hermes").parse(text, num_observations=0)
    assert isinstance(bad, Invalid) and "observation_1" in bad.reason


# -- coordinate systems -----------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_thousand_coordinates(dialect):
    text = zoom_text('{"bbox_2d": [100, 200, 500, 1000]}', dialect)
    assert get_dialect(dialect, coords="thousand").parse(text) == Zoom((0.1, 0.2, 0.5, 1.0))
    bad = get_dialect(dialect, coords="thousand").parse(zoom_text('{"bbox_2d": [100, 200, 500, 1001]}', dialect))
    assert isinstance(bad, Invalid) and "[0, 1000]" in bad.reason


@pytest.mark.parametrize("dialect", DIALECTS)
def test_pixel_coordinates_use_the_view_size_of_the_named_source(dialect):
    text = zoom_text('{"bbox_2d": [80, 40, 400, 400], "source": "original_image"}', dialect)
    assert get_dialect(dialect, coords="pixel").parse(text, view_sizes=VIEW_SIZES) == Zoom((0.1, 0.1, 0.5, 1.0))
    text = zoom_text('{"bbox_2d": [50, 25, 200, 100], "source": "observation_1"}', dialect)
    got = get_dialect(dialect, coords="pixel").parse(text, num_observations=1, view_sizes=VIEW_SIZES)
    assert got == Zoom((0.25, 0.25, 1.0, 1.0), "observation_1")
    bad = get_dialect(dialect, coords="pixel").parse(zoom_text('{"bbox_2d": [0, 0, 801, 10]}', dialect), view_sizes=VIEW_SIZES)
    assert isinstance(bad, Invalid) and "[0, 800] x [0, 400] pixels" in bad.reason
    unknown = get_dialect(dialect, coords="pixel").parse(zoom_text('{"bbox_2d": [0, 0, 8, 10]}', dialect))
    assert isinstance(unknown, Invalid) and "size of the source image" in unknown.reason


@pytest.mark.parametrize("coords, bbox, view_sizes, expected", [
    ("relative", [-0.2, 0.1, 1.3, 0.9], None, (0.0, 0.1, 1.0, 0.9)),
    ("thousand", [-5, 0, 2000, 500], None, (0.0, 0.0, 1.0, 0.5)),
    ("pixel", [-10, 100, 900, 500], VIEW_SIZES, (0.0, 0.25, 1.0, 1.0)),
])
def test_clamp_reproduces_released_behaviour(coords, bbox, view_sizes, expected):
    text = zoom_text(json.dumps({"bbox_2d": bbox}))
    assert isinstance(get_dialect(coords=coords).parse(text, view_sizes=view_sizes), Invalid)
    assert get_dialect(coords=coords, clamp=True).parse(text, view_sizes=view_sizes) == Zoom(expected)


def test_clamp_onto_an_edge_is_still_empty():
    action = get_dialect(clamp=True).parse(zoom_text('{"bbox_2d": [1.2, 0, 1.5, 1]}'))
    assert isinstance(action, Invalid) and "empty" in action.reason


@settings(max_examples=200, deadline=None)
@given(box=st.lists(st.floats(-2000, 3000, allow_nan=False), min_size=4, max_size=4),
       coords=st.sampled_from(COORDS), source=st.sampled_from(list(VIEW_SIZES)))
def test_every_coord_system_yields_relative_boxes_or_invalid(box, coords, source):
    text = zoom_text(json.dumps({"bbox_2d": box, "source": source}))
    for clamp in (False, True):
        action = get_dialect(coords=coords, clamp=clamp).parse(text, num_observations=2, view_sizes=VIEW_SIZES)
        if isinstance(action, Zoom):
            sx, sy = {"relative": (1, 1), "thousand": (1000, 1000), "pixel": VIEW_SIZES[source]}[coords]
            lims = (sx, sy, sx, sy)
            expected = [min(max(v, 0), lim) / lim if clamp else v / lim for v, lim in zip(box, lims)]
            assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(action.bbox, expected))
        else:
            assert isinstance(action, Invalid) and action.attempted


def test_key_order_permutations_exhaustively():
    keys = {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image", "why": "sign"}
    for perm in itertools.permutations(keys):
        body = json.dumps({k: keys[k] for k in perm})
        assert get_dialect().parse(zoom_text(body)) == Zoom((0.1, 0.2, 0.3, 0.4))
