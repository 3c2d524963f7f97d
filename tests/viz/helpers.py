"""Read back what a rendered document asks circuitsvis to draw."""

import json
import re

_RENDER = re.compile(r'CircuitsVis\.render\("([^"]+)",CircuitsVis\.(\w+),(.*)\);\}catch')


def rendered_props(page: str) -> list[tuple[str, str, dict]]:
    """(element id, component name, props) of every render call in ``page``."""
    return [(m.group(1), m.group(2), json.loads(m.group(3))) for m in _RENDER.finditer(page)]
