"""The Online-Ausweisfunktion, simulated: a test eID service with the personas' test cards
(docs/architecture.md, "The Online-Ausweisfunktion")."""
