"""Loads wsgi/testdata/vectors.json, shared with the Go tests."""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "..", "..", "testdata", "vectors.json")


def load():
    with open(PATH, encoding="utf-8") as f:
        return json.load(f)
