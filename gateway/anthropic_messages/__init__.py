"""Anthropic's Messages API in OpenAI's chat-completion shapes, and back: pure functions over JSON dicts.

Each direction has a module for the request, one for the whole reply and one for the stream; callers
import from them (this package re-exports nothing).

The front door (``POST /v1/messages``: a client speaking Anthropic, routed as a chat completion):

- ``front_door_request``: a Messages request body → a chat-completion request body
  (:func:`~.front_door_request.chat_request_from_messages`);
- ``front_door_reply``: a chat completion → an Anthropic ``Message``
  (:func:`~.front_door_reply.message_from_completion`, usage by :func:`~.front_door_reply.anthropic_usage`);
- ``front_door_stream``: chat-completion chunks → Anthropic's stream events
  (:class:`~.front_door_stream.MessageStreamTranslator`), rendered as server-sent events by
  :func:`~.front_door_stream.render_event`.

The ``anthropic`` backend kind (routeyard calling a native Messages API):

- ``backend_request``: a chat-completion request body → a Messages request
  (:func:`~.backend_request.messages_request_from_chat`);
- ``backend_reply``: an Anthropic ``Message`` → a chat completion
  (:func:`~.backend_reply.completion_from_message`, usage by :func:`~.backend_reply.openai_usage`);
- ``backend_stream``: Anthropic's stream events → chat-completion chunks
  (:class:`~.backend_stream.CompletionChunkTranslator`).

Both directions share ``errors`` (:class:`~.errors.MessagesTranslationError`, a 400 naming the field,
for a body that cannot be translated; error bodies mapped both ways, :func:`~.errors.anthropic_error_body`
and :func:`~.errors.openai_error_body`) and ``fields`` (the request's field checks, the lenient readers of
an upstream's answer). An upstream answer that cannot be read is an
:class:`~routeyard.gateway.errors.UpstreamError` (502).
"""
