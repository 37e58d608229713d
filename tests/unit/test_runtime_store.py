"""The runtime store of execflow.runtime.store (pure, no cluster).

Objects are kept by uid; DELETED and every end of a listing forget objects for good; indexes
follow the stored bodies. Includes a property test: whatever sequence of events and listings, the
store (and its indexes) equals what the last listing plus later events say exists.
"""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from execflow.runtime.store import Body, ChangeType, Store


def obj(name: str, uid: str, version: int = 1, owner: str | None = None, ns: str = "ns") -> Body:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": uid,
        "resourceVersion": str(version),
    }
    if owner:
        metadata["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": metadata}


def owner_index(body: Body) -> list[str]:
    return [r["uid"] for r in body["metadata"].get("ownerReferences", [])]


def store() -> Store:
    return Store("things", {"owner": owner_index})


def test_deleted_forgets_the_object_and_its_index_entries() -> None:
    things = store()
    things.apply("ADDED", obj("a", "u1", owner="o"))

    changes = things.apply("DELETED", obj("a", "u1", owner="o"))

    assert [c.type for c in changes] == [ChangeType.DELETED]
    assert things.named("ns", "a") is None
    assert things.get("u1") is None
    assert things.indexed("owner", "o") == []


def test_a_new_object_with_an_old_name_starts_clean() -> None:
    things = store()
    things.apply("ADDED", obj("a", "u1", owner="o1"))

    changes = things.apply("ADDED", obj("a", "u2", owner="o2"))

    assert [c.type for c in changes] == [ChangeType.DELETED, ChangeType.ADDED]
    assert things.named("ns", "a")["metadata"]["uid"] == "u2"
    assert things.get("u1") is None
    assert things.indexed("owner", "o1") == []


def test_a_listing_forgets_what_it_did_not_contain() -> None:
    things = store()
    things.apply(None, obj("a", "u1"))
    things.apply(None, obj("b", "u2"))
    things.listed()

    # The watch lost its place (410 Gone); "b" was deleted meanwhile, "c" created.
    things.apply(None, obj("a", "u1"))
    things.apply(None, obj("c", "u3"))
    changes = things.listed()

    assert [(c.type, c.body["metadata"]["name"]) for c in changes] == [(ChangeType.DELETED, "b")]
    assert sorted(b["metadata"]["name"] for b in things) == ["a", "c"]


def test_an_empty_listing_forgets_everything() -> None:
    things = store()
    things.apply("ADDED", obj("a", "u1"))

    things.listed()

    assert len(things) == 0


def test_a_listing_of_one_namespace_leaves_other_namespaces_alone() -> None:
    things = store()
    things.apply(None, obj("a", "u1", ns="one"), scope="one")
    things.apply(None, obj("b", "u2", ns="two"), scope="two")

    things.listed("one")

    assert things.named("two", "b") is not None
    assert things.named("one", "a") is not None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    things = store()
    things.put(obj("a", "u1", version=7))

    assert things.apply("MODIFIED", obj("a", "u1", version=5)) == []
    assert things.apply("MODIFIED", obj("a", "u1", version=7)) == [], "the echo of our own write"
    assert things.named("ns", "a")["metadata"]["resourceVersion"] == "7"
    assert [c.type for c in things.apply("MODIFIED", obj("a", "u1", version=8))] == [
        ChangeType.MODIFIED
    ]


events = st.lists(
    st.tuples(
        st.sampled_from(["ADDED", "MODIFIED", "DELETED", "LIST", "LISTED"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 3),  # which incarnation (uid) of the name
        st.sampled_from(["o1", "o2"]),
    ),
    max_size=40,
)


@given(events)
def test_store_matches_what_the_stream_said_exists(
    sequence: list[tuple[str, str, int, str]],
) -> None:
    things = store()
    truth: dict[str, tuple[str, str]] = {}  # name -> (uid, owner) after the stream's events
    listing: dict[str, tuple[str, str]] | None = None
    version = 0
    for kind, name, incarnation, owner in sequence:
        version += 1
        uid = f"{name}-{incarnation}"
        body = obj(name, uid, version, owner)
        if kind == "LISTED":
            things.listed()
            truth = dict(listing or {})
            listing = None
        elif kind == "LIST":
            if listing is None:
                listing = {}
            if name in listing:
                continue  # a listing holds each name once
            listing[name] = (uid, owner)
            things.apply(None, body)
        elif listing is not None:
            continue  # no watch events while listing
        elif kind == "DELETED":
            if truth.get(name, ("",))[0] == uid:
                del truth[name]
            things.apply("DELETED", body)
        else:
            truth[name] = (uid, owner)
            things.apply(kind, body)
    if listing is not None:
        return  # judged only at the end of a listing or between listings
    held = {b["metadata"]["name"]: b["metadata"]["uid"] for b in things}
    assert held == {name: uid for name, (uid, _) in truth.items()}
    for owner in ("o1", "o2"):
        indexed = sorted(b["metadata"]["name"] for b in things.indexed("owner", owner))
        assert indexed == sorted(name for name, (_, o) in truth.items() if o == owner)
