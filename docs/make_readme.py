"""Assemble README.md from docs/intro.md and the section files, in order. Run after editing a section:

    python docs/make_readme.py

tests/test_readme.py fails when README.md is out of date.
"""

from pathlib import Path

DOCS = Path(__file__).parent
SECTIONS = ["intro.md", "summary.md", "reference.md", "data.md", "train.md", "study.md", "ray.md"]


def build() -> str:
    parts = [(DOCS / name).read_text().strip() + "\n" for name in SECTIONS if (DOCS / name).exists()]
    return "\n".join(parts)


if __name__ == "__main__":
    (DOCS.parent / "README.md").write_text(build())
    print("README.md written")
