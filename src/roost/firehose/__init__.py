"""The firehose: the built-in simulated platform, the durable event log, the HTTP stream that
serves it to entitled consumers, and the consumer that stores it without loss or duplicates."""
