"""The image-tool registry: built-in zoom, RotateTool via entry point, custom tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import numpy as np
import pytest
from PIL import Image

from minio3_ext.core import (
    ActionError, Episode, EpisodeConfig, ImageTool, RotateTool, ToolCall, ToolResult, ZoomTool,
    available_tools, get_tool, register_tool,
)
from minio3_ext.core import tools as tools_module
from minio3_ext.core.dialect import get_dialect

from .conftest import assert_is_region, coord_image


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so test tools do not leak into other tests."""
    monkeypatch.setattr(tools_module, "_REGISTRY", dict(tools_module._REGISTRY))
    return tools_module._REGISTRY


def test_rotate_is_declared_as_an_entry_point_of_the_installed_package():
    eps = {ep.name: ep.value for ep in entry_points(group="minio3_ext.tools")}
    assert eps.get("rotate") == "minio3_ext.core.tools:RotateTool"


def test_rotate_reaches_the_registry_only_through_the_entry_point():
    code = textwrap.dedent("""
        import json
        from minio3_ext.core import tools
        before = sorted(tools._REGISTRY)
        after = tools.available_tools()
        print(json.dumps([before, after, type(tools.get_tool("rotate")).__name__]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after, cls = json.loads(out.stdout)
    assert before == ["zoom"] and {"rotate", "zoom"} <= set(after) and cls == "RotateTool"


def write_plugin(tmp_path, name: str, target: str) -> dict:
    """A fake installed distribution declaring one ``minio3_ext.tools`` entry point."""
    dist = tmp_path / "fakeplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[minio3_ext.tools]\n{name} = {target}\n")
    (tmp_path / "fakeplugin_tools.py").write_text(textwrap.dedent("""
        from minio3_ext.core import ImageTool, ToolResult

        class Flip(ImageTool):
            name = "flip"
            description = "Mirror left-right."
            parameters = {"type": "object", "properties": {}}

            def apply(self, source, arguments):
                return ToolResult(source.transpose(0))
    """))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("name, target, expected", [
    ("flip", "fakeplugin_tools:Flip", "OK ['flip', 'rotate',"),
    ("broken", "no_such_module:Tool", "ImportError image tool entry point 'broken' (no_such_module:Tool) failed to load"),
    ("mirror", "fakeplugin_tools:Flip", "ValueError image tool entry point 'mirror' loads"),
])
def test_third_party_entry_points(tmp_path, name, target, expected):
    env = write_plugin(tmp_path, name, target)
    code = textwrap.dedent("""
        from minio3_ext.core import available_tools
        for attempt in range(2):  # a broken plugin fails every time, not only the first
            try:
                print("OK", available_tools())
            except Exception as e:
                print(type(e).__name__, e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(expected) for line in lines), lines


def test_rotate_tool_through_an_episode_in_the_hermes_dialect():
    img = coord_image(300, 200)
    ep = Episode(img, EpisodeConfig.from_options(dialect="hermes", tools=("zoom", "rotate")))
    obs = ep.step("<think>the text is sideways</think>" + get_dialect("hermes").render(ToolCall("rotate", {"angle": 90})))
    assert obs.error is None and obs.index == 1
    np.testing.assert_array_equal(np.asarray(ep.raw_image("observation_1")), np.rot90(np.asarray(img)))
    assert ep.records[-1].kind == "rotate" and ep.records[-1].box is None
    obs = ep.step('<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 1, 0.5], "source": "observation_1"}}</tool_call>')
    assert obs.index == 2 and ep.records[-1].box == (0, 0, 200, 150)
    assert ep.records[-1].box_in_original is None  # a rotated image no longer maps onto the original
    obs = ep.step(get_dialect("hermes").render(ToolCall("rotate", {"angle": 45})))
    assert "'angle' must be one of 90, 180, 270" in obs.error and ep.invalid_actions == 1
    summary = ep.summary()
    assert (summary["tool_calls"], summary["zooms"]) == (2, 1)


@pytest.mark.parametrize("angle, ok", [(90, 90), (180, 180), (270, 270), (-90, 270), (450, 90), (90.0, 90),
                                       (45, None), (True, None), ("90", None), (None, None)])
def test_rotate_arguments(angle, ok):
    tool = get_tool("rotate")
    if ok is None:
        with pytest.raises(ActionError, match="'angle'"):
            tool.check_arguments({"angle": angle})
    else:
        assert tool.check_arguments({"angle": angle}) == {"angle": ok}


class Invert(ImageTool):
    name = "invert_for_test"
    description = "Invert the colours; 'level' must be 255."
    parameters = {"type": "object", "properties": {"level": {"type": "integer"}}, "required": ["level"]}

    def check_arguments(self, arguments):
        if int(arguments["level"]) != 255:  # KeyError / ValueError / TypeError on bad input, on purpose
            raise ActionError("'level' must be 255")
        return {"level": 255}

    def apply(self, source, arguments):
        return ToolResult(Image.fromarray(arguments["level"] - np.asarray(source)))


def test_custom_tool_registered_with_the_decorator_works_through_an_episode(registry):
    assert register_tool(Invert) is Invert
    assert "invert_for_test" in available_tools()
    img = coord_image(120, 80)
    ep = Episode(img, EpisodeConfig.from_options(dialect="hermes", tools=("zoom", "invert_for_test"), max_turns=10))
    call = '<tool_call>{"name": "invert_for_test", "arguments": %s}</tool_call>'
    obs = ep.step(call % '{"level": 255, "source": "original_image"}')
    assert obs.index == 1 and obs.error is None
    np.testing.assert_array_equal(np.asarray(ep.raw_image("observation_1")), 255 - np.asarray(img))
    # model mistakes inside a custom tool's argument check become error observations, never exceptions
    for args, fragment in [('{}', "invalid arguments for 'invert_for_test'"),
                           ('{"level": "max"}', "invalid arguments"),
                           ('{"level": [1]}', "invalid arguments"),
                           ('{"level": 7}', "'level' must be 255")]:
        obs = ep.step(call % args)
        assert obs.image is None and fragment in obs.error, (args, obs.error)
    assert not ep.done and ep.invalid_actions == 4
    obs = ep.step('<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0.5, 0.5, 1, 1], "source": "observation_1"}}</tool_call>')
    inverted = 255 - np.asarray(img)
    np.testing.assert_array_equal(np.asarray(ep.raw_image("observation_2")), inverted[40:80, 60:120])


def test_duplicate_names_raise_and_re_registration_is_idempotent(registry):
    register_tool(Invert)
    register_tool(Invert)

    class Impostor(Invert):
        pass

    with pytest.raises(ValueError, match="'invert_for_test' is already registered by .*Invert"):
        register_tool(Impostor)

    class OtherZoom(ZoomTool):
        pass

    with pytest.raises(ValueError, match="'zoom' is already registered"):
        register_tool(OtherZoom)
    with pytest.raises(TypeError, match="ImageTool subclass"):
        register_tool(object)


def test_unknown_tools(registry):
    with pytest.raises(KeyError, match="unknown image tool 'sharpen'"):
        get_tool("sharpen")
    with pytest.raises(KeyError, match="sharpen"):
        Episode(coord_image(50, 50), EpisodeConfig.from_options(tools=("zoom", "sharpen")))


def test_schemas_are_openai_function_tools():
    for tool in (ZoomTool(), RotateTool()):
        schema = tool.schema()
        assert schema["type"] == "function" and schema["function"]["name"] == tool.name
        assert schema["function"]["parameters"]["type"] == "object"
        json.dumps(schema)
    assert "relative" in ZoomTool().schema()["function"]["description"]  # verl drops items/minItems


def test_zoom_tool_direct_use():
    tool = ZoomTool()
    args = tool.check_arguments({"bbox_2d": [0.5, 0, 1, 0.5]})
    result = tool.apply(coord_image(100, 60), args)
    assert result.box == (50, 0, 100, 30)
    assert_is_region(result.image, result.box)
    with pytest.raises(ActionError, match="outside the valid range"):
        tool.check_arguments({"bbox_2d": [0.5, 0, 2, 0.5]})
