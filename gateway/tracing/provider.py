"""The gateway's tracer provider: built from the settings (OTLP/HTTP export) when tracing is on, the
tracer taken from it, and its buffered spans exported when the gateway stops."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from routeyard.gateway.tracing import Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from routeyard.gateway.settings import GatewaySettings

OTLP_TRACES_PATH = "/v1/traces"
"""Where, under ``otlp_endpoint``, spans are sent (the OTLP/HTTP traces path)."""


def tracer_provider_for(settings: GatewaySettings) -> TracerProvider | None:
    """A provider exporting in batches to ``settings.otlp_endpoint`` over OTLP/HTTP (protobuf), as
    service ``settings.otlp_service_name``; None when no endpoint is set (tracing off)."""
    if settings.otlp_endpoint is None:
        return None
    # imported only when tracing is on: the SDK and the exporter are not loaded otherwise
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otlp_service_name}))
    endpoint = settings.otlp_endpoint.rstrip("/") + OTLP_TRACES_PATH
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def gateway_tracer(provider: TracerProvider) -> Tracer:
    """The gateway's tracer from ``provider``."""
    return provider.get_tracer("routeyard.gateway")


async def stop_tracing(provider: TracerProvider, *, owned: bool) -> None:
    """Export the spans still buffered: shut ``provider`` down when the gateway built it (``owned``),
    else only flush it (its owner shuts it down). Off the loop: exporting is blocking HTTP."""
    await asyncio.to_thread(provider.shutdown if owned else provider.force_flush)
