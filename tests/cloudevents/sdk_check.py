"""Parses CloudEvents that hookpipe published, as read back from a real broker by
tests/integration/cloudevents.rs, with the CloudEvents Python SDK's Kafka protocol binding:
its current API (cloudevents.core.bindings.kafka, which validates every attribute: the required
ones, `specversion` 1.0, `time` RFC 3339, extension names of lower-case letters and digits) and
its v1 API (cloudevents.v1.kafka, the former cloudevents.kafka). A message the SDK refuses fails
the run; what the SDK read is printed as JSON, one object per message, for the test to check.

    python sdk_check.py MESSAGES.json   # [{"mode", "key", "headers": [[name, value]], "value_base64"}]
"""

import base64
import json
import sys

from cloudevents.core.bindings import kafka as core_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1 import kafka as v1_kafka


def main(path):
    with open(path, encoding="utf-8") as file:
        messages = json.load(file)
    seen = []
    for message in messages:
        headers = {name: value.encode("utf-8") for name, value in message["headers"]}
        key = message["key"].encode("utf-8") if message["key"] is not None else None
        value = base64.b64decode(message["value_base64"])
        core_message = core_kafka.KafkaMessage(headers=headers, key=key, value=value)
        v1_message = v1_kafka.KafkaMessage(headers, key, value)
        if message["mode"] == "binary":
            event = core_kafka.from_binary(core_message, JSONFormat())
            legacy = v1_kafka.from_binary(v1_message)
        else:
            event = core_kafka.from_structured(core_message, JSONFormat())
            legacy = v1_kafka.from_structured(v1_message)
        attributes = event.get_attributes()
        seen.append(
            {
                "mode": message["mode"],
                "specversion": event.get_specversion(),
                "id": event.get_id(),
                "source": event.get_source(),
                "type": event.get_type(),
                "time": event.get_time().isoformat(),
                "datacontenttype": event.get_datacontenttype(),
                "extensions": {
                    name: (value if isinstance(value, (str, int, bool)) else str(value))
                    for name, value in attributes.items()
                    if name not in ("specversion", "id", "source", "type", "time", "datacontenttype")
                },
                "data": event.get_data(),
                "v1": {
                    "specversion": legacy["specversion"],
                    "id": legacy["id"],
                    "source": legacy["source"],
                    "type": legacy["type"],
                    "hookpipetrace": legacy.get("hookpipetrace"),
                    "data": legacy.get_data(),
                },
            }
        )
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
