"""check-env's twin: the target's identities with the source's environment policy."""

from __future__ import annotations


def test_a_web_api_key_not_yet_given_to_the_clone_keeps_the_sources_in_the_twin() -> None:
    from tools.offline.clone.check import twin_values

    key = "launchready:firebaseWebApiKey"
    source = {key: "AIza" + "Q" * 35, "launchready:projectId": "myapp-staging-4821"}
    target = {"launchready:projectId": "myapp-review-4821"}
    assert twin_values(source, target) == {**target, key: source[key]}
    own = {**target, key: "AIza" + "R" * 35}
    assert twin_values(source, own) == own
