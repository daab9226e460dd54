"""The session layer: what a scenario's set-up is made of, whichever target it runs on.

- `record`: the test record (boards, links, servers a test used; its secrets; its timeline).
- `interfaces`: what the fixtures hand a scenario: a firmware source and a board factory.
- `baseline`: the one "bring a board to the known state" sequence both board factories use.
"""
