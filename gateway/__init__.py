"""Device and telephony adapters: sans-I/O protocol codecs and thin asyncio transports.

Each protocol is one module with the same shape (framer, decoder, encoder of replies). A codec takes bytes
and ``now`` and returns :class:`gateway.events.Decoded` results: the normalised events and the reply bytes
owed to the device. The transport hands the events to the core and writes the reply only after the core
says they are durable.
"""
