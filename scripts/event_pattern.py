"""Matches events against an EventBridge event pattern with a real
implementation of EventBridge's pattern language: LocalStack's
(localstack-core's event_rule_engine, which LocalStack checks against AWS),
installed into .venv by `make setup` for the tests only. The emulator's own
TestEventPattern is a stub, and its matcher does not look inside arrays of
objects.

    stdin:  {"pattern": {...}, "events": [{...}, ...]}
    stdout: [true, false, ...]   one per event: does the pattern match it

A pattern EventBridge would refuse (LocalStack's compiler validates it as
PutRule does) exits 1 with the reason.
"""

import json
import sys

from localstack.services.events.event_rule_engine import (
    EventPatternCompiler,
    EventRuleEngine,
)


def main() -> int:
    given = json.load(sys.stdin)
    try:
        pattern = EventPatternCompiler().compile_event_pattern(given["pattern"])
    except Exception as refused:  # InvalidEventPatternException, as PutRule answers
        print(f"the pattern is not valid: {refused}", file=sys.stderr)
        return 1
    engine = EventRuleEngine()
    json.dump([engine.evaluate_pattern_on_event(pattern, event) for event in given["events"]], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
