from opentelemetry.trace import SpanKind


def test_a_goods_request_is_a_server_span_with_sql_child_spans(client, goods_in_stock, spans):
    goods_in_stock()
    spans.clear()

    client.get("/api/goods/")

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert [s.name for s in server] == ["GET api/goods/"]
    sql = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert sql, "no SQL spans"
    assert all(s.parent.span_id == server[0].context.span_id for s in sql)
    assert all(s.context.trace_id == server[0].context.trace_id for s in sql)
    assert {s.name for s in sql} == {"SELECT"}
    assert all("db.statement" in s.attributes for s in sql)


def test_every_response_names_its_trace(client, db, spans):
    response = client.get("/api/goods/")

    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    version, trace_id, span_id, flags = response["traceresponse"].split("-")
    assert version == "00"
    assert int(trace_id, 16) == server.context.trace_id
    assert int(flags, 16) & 0x01  # sampled; the SDK also sets the random-id flag (-03)
