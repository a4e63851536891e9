"""The sandbox's HTTP layer, driven over real loopback HTTP by requests and urllib3.

A tiny service stands in for a CRM so these tests check only what the server itself does: framing,
keep-alive, TLS, streaming, the request log and the faults the server applies.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from connectors.sandbox.faults import Fault, FaultPlan
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.server import RequestLog, SandboxServer
from connectors.sandbox.tls import TLSFiles, ensure_test_ca


class EchoService:
    """Answers with what it was sent; streams numbered CSV lines; fails on /boom."""

    name = "salesforce"

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.lock = threading.Lock()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.path == "/boom":
            raise RuntimeError("the service has a bug")
        if request.path == "/stream":
            count = int(request.first("n", "0") or 0)
            return SandboxResponse(200, (f"{i},row {i}\n".encode() for i in range(count)),
                                   {"Content-Type": "text/csv"})
        if request.path == "/form":
            return SandboxResponse.json(request.form())
        return SandboxResponse.json({
            "method": request.method, "path": request.path, "query": dict(request.query),
            "query_string": request.query_string, "body": request.body.decode(),
            "x_test": request.headers.get("x-test"),
        }, headers={"X-Served-By": "echo"})

    def error_response(self, fault: Fault, request: SandboxRequest) -> SandboxResponse:
        code = fault.int_param("code", 500)
        return SandboxResponse.json([{"errorCode": f"TEST_{code}", "message": f"failed {request.path}"}], code)

    def apply_fault(self, fault: Fault, request: SandboxRequest) -> SandboxResponse | None:
        with self.lock:
            self.applied.append(fault.kind)
        if fault.kind == "session_expired":
            return SandboxResponse.json([{"errorCode": "INVALID_SESSION_ID", "message": "expired"}], 401)
        return None  # e.g. same_stamp: change the world, then answer as usual


@pytest.fixture()
def echo() -> EchoService:
    return EchoService()


@pytest.fixture()
def server(echo: EchoService) -> Iterator[SandboxServer]:
    with SandboxServer(echo) as running:
        yield running


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False
    return client


def test_request_reaches_the_service_as_sent(server: SandboxServer) -> None:
    answer = session().get(f"{server.base_url}/echo/a%20b?x=1&x=2&y=", headers={"X-Test": "yes"})
    assert answer.status_code == 200
    assert answer.headers["X-Served-By"] == "echo"
    assert answer.json() == {"method": "GET", "path": "/echo/a%20b", "query": {"x": ["1", "2"], "y": [""]},
                             "query_string": "x=1&x=2&y=", "body": "", "x_test": "yes"}
    assert server.base_url == f"http://127.0.0.1:{server.port}" and server.port > 0


def test_post_bodies_plain_form_and_chunked(server: SandboxServer) -> None:
    client = session()
    assert client.post(f"{server.base_url}/echo", data=b'{"a": 1}').json()["body"] == '{"a": 1}'
    assert client.post(f"{server.base_url}/form", data={"grant_type": "password", "x": "a b"}).json() == {
        "grant_type": "password", "x": "a b"}
    # A generator body makes requests send Transfer-Encoding: chunked.
    answer = client.post(f"{server.base_url}/echo", data=(part for part in [b"one,", b"two,", b"three"]))
    assert answer.json()["body"] == "one,two,three"


def test_keep_alive_reuses_one_connection(server: SandboxServer) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1)
    statuses = [pool.request("GET", f"/echo?n={n}").status for n in range(5)]
    assert statuses == [200] * 5
    assert pool.num_connections == 1


def test_iterable_body_is_streamed_chunked(server: SandboxServer) -> None:
    answer = session().get(f"{server.base_url}/stream?n=30000", stream=True)
    assert answer.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in answer.headers
    lines = answer.text.splitlines()
    assert len(lines) == 30000
    assert lines[0] == "0,row 0" and lines[-1] == "29999,row 29999"


def test_tls_is_trusted_through_the_test_ca_only(echo: EchoService, sandbox_tls: TLSFiles) -> None:
    with SandboxServer(echo, tls=sandbox_tls) as running:
        assert running.base_url.startswith("https://127.0.0.1:")
        client = session()
        client.verify = str(sandbox_tls.ca_cert)
        assert client.get(f"{running.base_url}/echo").json()["path"] == "/echo"
        with pytest.raises(requests.exceptions.SSLError):
            session().get(f"{running.base_url}/echo")  # default trust store: the test CA is unknown
        pool = urllib3.HTTPSConnectionPool("localhost", running.port, ca_certs=str(sandbox_tls.ca_cert))
        assert pool.request("GET", "/echo").status == 200  # the certificate also names localhost


def test_test_ca_is_reused_while_valid(sandbox_tls_dir: Path, sandbox_tls: TLSFiles) -> None:
    before = sandbox_tls.ca_cert.read_bytes()
    assert ensure_test_ca(sandbox_tls_dir).ca_cert.read_bytes() == before


def test_request_log_counts_what_was_served(server: SandboxServer) -> None:
    client = session()
    client.get(f"{server.base_url}/echo/one?page=2")
    client.get(f"{server.base_url}/echo/two")
    client.get(f"{server.base_url}/boom")
    log = server.log
    assert log.count() == 3
    assert log.count(path_contains="/echo/") == 2
    assert log.count(status=500) == 1
    assert log.count(service="hubspot") == 0
    first = log.entries()[0]
    assert (first.service, first.method, first.path, first.query, first.status, first.fault) == (
        "salesforce", "GET", "/echo/one", "page=2", 200, None)
    log.clear()
    assert log.count() == 0


def test_a_failing_service_answers_with_its_own_500(server: SandboxServer) -> None:
    answer = session().get(f"{server.base_url}/boom")
    assert answer.status_code == 500
    assert answer.json() == [{"errorCode": "TEST_500", "message": "failed /boom"}]


def test_status_fault_uses_the_service_error_body_then_stops(server: SandboxServer) -> None:
    server.faults.add(Fault("salesforce", "status", match="/echo", after=1, times=2, params={"code": "503"}))
    client = session()
    statuses = [client.get(f"{server.base_url}/echo").status_code for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    assert client.get(f"{server.base_url}/other").status_code == 200  # match is not met
    assert server.log.count(status=503) == 2
    assert [entry.fault for entry in server.log.entries()][:3] == [
        None, "salesforce:status@/echo:after=1,times=2,code=503", "salesforce:status@/echo:after=1,times=2,code=503"]


def test_status_fault_body(server: SandboxServer) -> None:
    server.faults.add(Fault("*", "status", params={"code": "502"}))
    answer = session().get(f"{server.base_url}/echo/x")
    assert (answer.status_code, answer.json()) == (502, [{"errorCode": "TEST_502", "message": "failed /echo/x"}])


def test_slow_fault_delays_then_answers(server: SandboxServer) -> None:
    server.faults.add(Fault("salesforce", "slow", params={"ms": "300"}))
    answer = session().get(f"{server.base_url}/echo")
    assert answer.status_code == 200
    assert answer.elapsed.total_seconds() >= 0.3  # a lower bound: sleep never wakes early
    assert server.log.entries()[0].fault == "salesforce:slow:ms=300"


def test_truncate_fault_gives_a_short_read(server: SandboxServer) -> None:
    server.faults.add(Fault("salesforce", "truncate"))
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        pool.request("GET", "/echo/truncated-please")
    server.faults.add(Fault("salesforce", "truncate"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session().get(f"{server.base_url}/stream?n=1000")  # a streamed body is cut too
    assert session().get(f"{server.base_url}/echo").status_code == 200  # once each, then served again


def test_malformed_fault_keeps_status_and_content_type(server: SandboxServer) -> None:
    server.faults.add(Fault("salesforce", "malformed", match="^GET /echo"))
    answer = session().get(f"{server.base_url}/echo")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json;charset=UTF-8"
    with pytest.raises(ValueError):
        json.loads(answer.content)
    server.faults.add(Fault("salesforce", "malformed"))
    csv_answer = session().get(f"{server.base_url}/stream?n=3")
    assert csv_answer.headers["Content-Type"] == "text/csv"
    assert csv_answer.text != "0,row 0\n1,row 1\n2,row 2\n"


def test_reset_fault_drops_the_connection(server: SandboxServer) -> None:
    server.faults.add(Fault("salesforce", "reset"))
    with pytest.raises(requests.exceptions.ConnectionError):
        session().get(f"{server.base_url}/echo")
    assert session().get(f"{server.base_url}/echo").status_code == 200
    assert [entry.status for entry in server.log.entries()] == [0, 200]


def test_service_kinds_go_to_the_service(server: SandboxServer, echo: EchoService) -> None:
    server.faults.add(Fault("salesforce", "session_expired"))
    server.faults.add(Fault("salesforce", "same_stamp", params={"count": "3"}))
    client = session()
    first, second, third = (client.get(f"{server.base_url}/echo") for _ in range(3))
    assert first.status_code == 401 and first.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert second.status_code == 200  # same_stamp let the request be handled after applying itself
    assert third.status_code == 200
    assert echo.applied == ["session_expired", "same_stamp"]


def test_faults_for_another_service_are_ignored(server: SandboxServer) -> None:
    server.faults.add(Fault("hubspot", "status", params={"code": "429"}))
    assert session().get(f"{server.base_url}/echo").status_code == 200
    assert server.faults.pending() != []


def test_servers_share_a_plan_and_a_log(echo: EchoService) -> None:
    plan = FaultPlan.parse("salesforce:status:code=503,times=1")
    log = RequestLog()
    with SandboxServer(echo, faults=plan, log=log) as one, SandboxServer(echo, faults=plan, log=log) as two:
        assert session().get(f"{one.base_url}/echo").status_code == 503
        assert session().get(f"{two.base_url}/echo").status_code == 200
    assert log.count() == 2 and plan.hits() == 1


def test_request_log_keeps_only_the_newest_requests(echo: EchoService) -> None:
    log = RequestLog(limit=3)
    with SandboxServer(echo, log=log) as server:
        for number in range(5):
            assert session().get(f"{server.base_url}/echo/{number}").status_code == 200
        # no waiting for the log: an answer's last bytes leave only after its request is logged
        assert [entry.path for entry in log.entries()] == ["/echo/2", "/echo/3", "/echo/4"]
    assert log.dropped == 2 and log.count(path_contains="/echo/0") == 0
    log.clear()
    assert log.entries() == [] and log.dropped == 0
    with pytest.raises(ValueError, match="at least 1"):
        RequestLog(limit=0)


def test_answers_are_sent_without_nagle_delay(echo: EchoService) -> None:
    # An answer is several small writes (headers, chunks, the last chunk): with Nagle's algorithm on, the
    # last one waits for the client's delayed ACK, 40 ms per request on Linux.
    with SandboxServer(echo) as server:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False)
        assert pool.request("GET", "/echo").status == 200  # the connection stays open, kept alive
        with server._httpd.connections_lock:
            (connection,) = server._httpd.connections
            assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        pool.close()


def test_stop_closes_the_port_and_idle_connections(echo: EchoService) -> None:
    running = SandboxServer(echo).start()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", running.port, retries=False)
    assert pool.request("GET", "/echo").status == 200  # leaves an idle keep-alive connection
    running.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session().get(f"{running.base_url}/echo")
    with pytest.raises(urllib3.exceptions.HTTPError):
        pool.request("GET", "/echo")


def test_running_sandbox_serves_given_services_over_tls(tmp_path: Path, sandbox_tls_dir: Path) -> None:
    from connectors.sandbox.testing import make_world, running_sandbox

    world = make_world(tmp_path, {})
    with running_sandbox(world, services={"salesforce": EchoService()}, tls_dir=sandbox_tls_dir,
                         faults="salesforce:status@/second:code=503") as sandbox:
        assert sandbox.salesforce is not None and sandbox.hubspot is None
        assert sandbox.salesforce.base_url.startswith("https://")
        client = sandbox.requests_session()  # trusts the test CA
        assert client.get(f"{sandbox.salesforce.base_url}/first").status_code == 200
        assert client.get(f"{sandbox.salesforce.base_url}/second").status_code == 503
        assert sandbox.log.count(status=503) == 1 and sandbox.faults.pending() == []
        assert sandbox.salesforce_domain() == f"127.0.0.1:{sandbox.salesforce.port}/sfauth"
        with pytest.raises(RuntimeError, match="not hubspot"):
            sandbox.hubspot_client()


def test_running_sandbox_without_tls_downgrades_salesforce_urls(tmp_path: Path) -> None:
    from connectors.sandbox.testing import make_world, running_sandbox

    world = make_world(tmp_path, {})
    with running_sandbox(world, services={"salesforce": EchoService()}, tls=False) as sandbox:
        assert sandbox.salesforce is not None and sandbox.ca_cert is None
        https_url = f"https://127.0.0.1:{sandbox.salesforce.port}/services/data/v59.0/"
        assert sandbox.requests_session().get(https_url).json()["path"] == "/services/data/v59.0/"


# -- `kpi-agent sandbox` (runner) ---------------------------------------------------------------------

def _hand_made_world_dir(directory: Path) -> Path:
    """Two teams, one per CRM: Ann's two deals are Salesforce's, Bo's one deal is HubSpot's."""
    records = {
        "world": [{"seed": 0, "now": "2026-03-01T00:00:00Z"}],
        "teams": [{"id": 1, "name": "East", "crm": "salesforce"}, {"id": 2, "name": "West", "crm": "hubspot"}],
        "reps": [{"id": 1, "name": "Ann Lee", "email": "ann@example.com", "team_id": 1},
                 {"id": 2, "name": "Bo Chan", "email": "bo@example.com", "team_id": 2}],
        "accounts": [{"id": 1, "name": "Acme", "owner_rep_id": 1}, {"id": 2, "name": "Globex", "owner_rep_id": 2}],
        "pipelines": [{"id": 1, "name": "Sales"}],
        "stages": [{"id": 1, "pipeline_id": 1, "name": "Prospecting", "sort_order": 1, "probability": 0.1},
                   {"id": 2, "pipeline_id": 1, "name": "Closed Won", "sort_order": 2, "probability": 1.0,
                    "is_closed": True, "is_won": True}],
        "opportunities": [
            {"id": 1, "name": "A1", "account_id": 1, "owner_rep_id": 1, "pipeline_id": 1, "stage_id": 1,
             "amount": 100, "close_date": "2026-03-20", "created_at": "2026-02-01T10:00:00Z"},
            {"id": 2, "name": "A2", "account_id": 1, "owner_rep_id": 1, "pipeline_id": 1, "stage_id": 2,
             "amount": 250, "close_date": "2026-02-20", "created_at": "2026-02-02T10:00:00Z", "is_closed": True,
             "is_won": True},
            {"id": 3, "name": "B1", "account_id": 2, "owner_rep_id": 2, "pipeline_id": 1, "stage_id": 1,
             "amount": 75, "close_date": "2026-03-25", "created_at": "2026-02-03T10:00:00Z"},
        ],
    }
    directory.mkdir()
    for table, rows in records.items():
        (directory / f"{table}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def test_sandbox_command_prints_a_config_the_agent_accepts_and_the_clients_use(tmp_path: Path) -> None:
    import io
    import time
    import tomllib

    from hubspot import HubSpot
    from simple_salesforce import Salesforce

    from agent.config import parse_config
    from connectors.sandbox.runner import run_sandbox_command

    world_dir = _hand_made_world_dir(tmp_path / "case")
    out = io.StringIO()
    stop = threading.Event()
    runner = threading.Thread(target=run_sandbox_command, kwargs={
        "seed": 1, "size": "tiny", "world_dir": world_dir, "faults": "hubspot:status@/owners:code=502",
        "serve_as": "split", "data_dir": tmp_path / "data", "stop": stop, "out": out})
    runner.start()
    try:
        for _ in range(200):  # the world is tiny: it loads in well under a second
            if "Serving until Ctrl-C" in out.getvalue():
                break
            time.sleep(0.05)
        printed = out.getvalue()
        assert "Serving until Ctrl-C" in printed, printed
        snippet = printed.split("Config for the agent (paste into config.toml):", 1)[1].split("Serving until")[0]
        raw = tomllib.loads(snippet)
        config = parse_config(raw)  # the core's own check
        assert set(config.connections) == {"salesforce", "hubspot"}
        assert "Faults: hubspot:status@/owners:code=502" in printed
        sf_config, hs_config = raw["connections"]["salesforce"], raw["connections"]["hubspot"]
        assert Path(sf_config["ca_bundle"]).is_file() and "REQUESTS_CA_BUNDLE" in printed

        session = requests.Session()
        session.trust_env = False
        session.verify = sf_config["ca_bundle"]
        sf = Salesforce(username=sf_config["username"], password=sf_config["password"],
                        security_token=sf_config["security_token"], domain=sf_config["domain"],
                        version=sf_config["api_version"], session=session)
        served = sf.query("SELECT Id, Name, Amount FROM Opportunity ORDER BY Name")
        assert served["totalSize"] == 2  # split: only the Salesforce team's deals
        assert [(row["Name"], row["Amount"]) for row in served["records"]] == [("A1", 100.0), ("A2", 250.0)]

        hubspot = HubSpot(access_token=hs_config["access_token"], host=hs_config["base_url"])
        deals = hubspot.crm.deals.basic_api.get_page(properties=["dealname", "amount"])
        assert [(deal.properties["dealname"], deal.properties["amount"]) for deal in deals.results] == [("B1", "75")]
    finally:
        stop.set()
        runner.join(timeout=10)
    assert "Stopped after" in out.getvalue()


def test_sandbox_command_refuses_a_bad_fault_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from connectors.sandbox.runner import run_sandbox_command

    with pytest.raises(SystemExit) as stopped:
        run_sandbox_command(1, "tiny", None, "hubspot:explode", "split", tmp_path)
    assert stopped.value.code == 2
    assert "kpi-agent sandbox: fault kind 'explode' is not one of hubspot's" in capsys.readouterr().err


def test_generated_worlds_are_reused_for_the_same_seed_and_size(tmp_path: Path) -> None:
    import io

    from connectors.sandbox.runner import prepare_world

    out = io.StringIO()
    first = prepare_world(data_dir=tmp_path, seed=3, size="tiny", out=out)
    first.close()
    second = prepare_world(data_dir=tmp_path, seed=3, size="tiny", out=out)
    assert second.path == first.path and second.count("opportunities") == 12
    assert out.getvalue().count("Generating") == 1 and "Reusing" in out.getvalue()
    assert not list(tmp_path.glob("*.partial"))
