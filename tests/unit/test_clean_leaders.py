"""Given the leader dots of a table of contents (runs of dots between a title and its page number),
When elements are cleaned, Then each run becomes one ellipsis, an element of leaders alone is
dropped, and prose (an ellipsis of up to four dots or two ellipsis characters, decimals, version
numbers, URLs) is left as it was."""

from __future__ import annotations

import pytest

from docmill.documents.clean import ELLIPSIS, clean_elements, collapse_leaders
from docmill.documents.unstructured_setup import configure_unstructured


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Introduction ........................ 7", f"Introduction {ELLIPSIS} 7"),
        (
            "Creation ...... The Four Schools .......... Entropy",
            f"Creation {ELLIPSIS} The Four Schools {ELLIPSIS} Entropy",
        ),
        (
            "Journal ....... ......... ....... Maliphant's Journals ..........",
            f"Journal {ELLIPSIS} Maliphant's Journals",
        ),
        ("Table of Contents\n\n.......... ........ .....", "Table of Contents"),
        ("Scope\u00b7\u00b7\u00b7\u00b7\u00b7\u00b7\u00b7 3", f"Scope {ELLIPSIS} 3"),
        ("Risks\u2026\u2026\u2026\u2026 12", f"Risks {ELLIPSIS} 12"),
        ("Glossary . . . . . . . . 41", f"Glossary {ELLIPSIS} 41"),
        ("........................................", ""),
    ],
)
def test_leader_runs_collapse_to_one_ellipsis(text, expected):
    assert collapse_leaders(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "And then... nothing happened.",
        "Version 3.1.4.1 of the tool at https://example.com/a.b.c ships today.",
        "Pi is 3.14159 and e is 2.71828.",
        "She paused\u2026 then went on.",
        "They met, parting to come together again.... Mrs. Gummidge, for the moment, would cease.",
        "Roberts published All I want for Christmas .... The title of the book was a joke.",
        "\u4ed6\u6c89\u9ed8\u4e86\u2026\u2026\u7136\u540e\u8d70\u4e86\u3002",
        "Steps: . . . . then stop.",
        "",
    ],
)
def test_prose_is_left_alone(text):
    assert collapse_leaders(text) == text


def test_cleaning_drops_elements_of_leaders_alone_and_keeps_the_titles_of_the_rest():
    # Given a contents page as a PDF partition gives it: a title, leader-only lines, and
    # lines where titles sit between leaders
    configure_unstructured()
    from unstructured.documents.elements import NarrativeText, Table, Text, Title

    elements = [
        Title(text="Contents"),
        Text(text="..................................................... ..........................."),
        Text(text="...."),
        Text(text="* * *"),
        Text(text="\U0001f44d"),
        NarrativeText(text="The Chant of Light ......... The Blight .............. The Commandments of the Maker 12"),
        Table(text="Annex A ........ 40\nAnnex B ........ 44"),
    ]
    # When they are cleaned
    cleaned = clean_elements(elements)
    # Then the leader-only and punctuation-only lines are gone (a symbol is content) and every
    # title survives, without a run of dots
    assert [e.text for e in cleaned] == [
        "Contents",
        "\U0001f44d",
        f"The Chant of Light {ELLIPSIS} The Blight {ELLIPSIS} The Commandments of the Maker 12",
        f"Annex A {ELLIPSIS} 40\nAnnex B {ELLIPSIS} 44",
    ]
