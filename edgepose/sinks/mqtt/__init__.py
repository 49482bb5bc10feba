"""The MQTT sink: paho client, bounded outbox, topics and payloads, Home Assistant discovery."""
