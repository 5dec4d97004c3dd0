import json

import pytest

from minio3_ext.data.synthetic import generate, load_rows


@pytest.fixture(scope="session")
def synth_items(tmp_path_factory):
    """Six small synthetic rows (1200x900) with ``[item-id]`` markers, as rows and as a JSONL file."""
    from eval_vlm_script import marked_items

    out = tmp_path_factory.mktemp("synth")
    rows = marked_items(load_rows(generate(out, n=6, seed=3, width=1200, height=900)))
    path = out / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows, path
