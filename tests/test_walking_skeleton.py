"""End to end: the bundled report, the real model, a real FAISS index and a real HTTP server."""
import pytest

OBVIOUS = [
    ("How does China protect critical information infrastructure?", "p2.iv"),
    ("What is the number of Internet users in China and the penetration rate?", "p2.x"),
    ("How does China combat cybercrime and cyber terrorism?", "p2.vi"),
    ("What are the goals for artificial intelligence security and development?", "p3.v"),
    ("What action initiatives are proposed for the future?", "p4"),
    ("How have cross-border data flow pilots been explored?", "p2.vii"),
]


@pytest.mark.parametrize("question,section", OBVIOUS)
def test_post_query_cites_the_right_section(client, question, section):
    response = client.post("/query", json={"question": question, "k": 5})
    assert response.status_code == 200
    passages = response.json()["passages"]
    assert len(passages) == 5
    assert passages[0]["citation"]["section_id"] == section
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)


def test_citation_points_into_the_original_file(client, ingested):
    doc = ingested.documents[0]
    body = client.post("/query", json={"question": "critical information infrastructure", "k": 3}).json()
    for passage in body["passages"]:
        c = passage["citation"]
        assert c["document"] == doc.id
        assert c["section_path"][0].startswith("PART ")
        assert c["section_title"] == c["section_path"][-1]
        original = doc.text[c["char_start"]:c["char_end"]]
        # The cited span starts and ends with the passage's own first and last words.
        assert original.split()[0].strip("*-") in passage["text"].split()[0]
        assert passage["text"].split()[-1] in original


def test_section_path_matches_the_printed_headings(client):
    body = client.post("/query", json={"question": "protection of critical information infrastructure", "k": 1}).json()
    assert body["passages"][0]["citation"]["section_path"] == [
        "PART 2 A Decade of Practice in Building a Community with a Shared Future in Cyberspace",
        "(IV) Enhancing the Protection of Critical Information Infrastructure",
    ]
