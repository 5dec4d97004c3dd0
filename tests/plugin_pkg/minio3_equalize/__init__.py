"""Histogram equalisation as an image tool (a test plugin package)."""

from PIL import ImageOps

from minio3_ext.core.tools import ImageTool, ToolResult


class EqualizeTool(ImageTool):
    name = "equalize"
    description = "Equalize the histogram of an image to bring out faint details."
    parameters = {
        "type": "object",
        "properties": {
            "strength": {"type": "string", "enum": ["full"], "description": "Only 'full' is supported."},
            "source": {"type": "string", "description": "'original_image' or 'observation_i'."},
        },
        "required": [],
    }

    def apply(self, source, arguments):
        return ToolResult(ImageOps.equalize(source))
