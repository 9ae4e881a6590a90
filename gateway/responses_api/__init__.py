"""OpenAI's Responses API, stateless subset, in chat-completion shapes: pure functions over JSON dicts.

One module per part of the exchange; callers import from them (this package re-exports nothing):

- ``request``: a ``POST /v1/responses`` body → a chat-completion request body
  (:func:`~.request.chat_request_from_responses`; what is translated, dropped and refused), raising
  :class:`~.request.UnsupportedFeatureError` or :class:`~.request.ResponsesTranslationError` (a 400
  naming the field);
- ``reply``: a chat completion → a ``Response`` object (:func:`~.reply.response_from_completion`);
- ``stream``: chat-completion chunks → the Responses stream events, each with its ``sequence_number``
  (:class:`~.stream.ResponseStreamTranslator`), rendered by :func:`~.stream.render_event`;
- ``objects``: what the reply and the stream build alike: the ``Response`` object, its output items and
  their ids, its status and usage.
"""
