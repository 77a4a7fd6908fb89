"""Network and answer delays: counted by arrival, really slept, overlapping, composing with faults."""

from __future__ import annotations

import ctypes
import http.client
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

import pytest
import requests

from tests.amocrm_emulator import EmulatorHandle, start_emulator
from tests.emulator.conftest import Api


def caller(emu: EmulatorHandle) -> Callable[..., requests.Response]:
    """A call on a connection of its own, as one of many concurrent clients would make it."""
    headers = {"Authorization": f"Bearer {emu.tokens()['access_token']}"}

    def call(method: str = "GET", path: str = "/api/v4/account", body: Any = None) -> requests.Response:
        with requests.Session() as session:
            return session.request(method, emu.url + path, json=body, headers=headers, timeout=30)

    return call


def account_log(emu: EmulatorHandle) -> List[Dict[str, Any]]:
    return [e for e in emu.control.requests() if e["path"] == "/api/v4/account"]


def test_the_limit_counts_arrivals_an_eighth_sent_later_still_gets_429(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(block_after=0)
    call = caller(emu)
    emu.control.set_latency(network_delay=[0.8, 0.8])
    with ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        seven = [pool.submit(call) for _ in range(7)]
        # 1.1 s after the first send: the seven arrived at ~0.8 s and are on their way back.
        time.sleep(max(0.0, started + 1.1 - time.monotonic()))
        emu.control.set_latency(network_delay=[0, 0])
        late = call()
        assert [f.result().status_code for f in seven] == [200] * 7
    assert late.status_code == 429 and late.headers["Content-Type"] == "text/html"
    log = account_log(emu)
    first_seven, eighth = log[:7], log[7]
    assert [e["refused"] for e in first_seven] == [None] * 7 and eighth["refused"] == 429
    first_sent = min(e["sent_time"] for e in first_seven)
    first_arrival = min(e["arrival_time"] for e in first_seven)
    assert eighth["sent_time"] - first_sent > 1.0  # sent more than a second after the first…
    assert eighth["arrival_time"] - first_arrival < 1.0  # …but arrived within its second
    assert all(0.8 - 1e-6 <= e["arrival_time"] - e["sent_time"] < 1.0 for e in first_seven)  # float sums
    stats = emu.control.rate_stats()
    assert (stats["max_all"], stats["max_accepted"], stats["total_429"]) == (8, 7, 1)
    assert stats["per_integration"][emu.integration["client_id"]] == {"all": 8, "accepted": 7, "total_429": 1}
    # The window slides by arrival: a second after the first arrival there is room again.
    time.sleep(max(0.0, first_arrival + 1.05 - time.monotonic()))
    assert call().status_code == 200


def test_requests_sent_together_but_arriving_apart_all_pass(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(block_after=0)
    call = caller(emu)
    with ThreadPoolExecutor(6) as pool:
        early = [f.result() for f in [pool.submit(call) for _ in range(6)]]
        emu.control.set_latency(network_delay=[1.2, 1.2])
        late = [f.result() for f in [pool.submit(call) for _ in range(6)]]
    assert [r.status_code for r in early + late] == [200] * 12
    log = account_log(emu)
    sent = [e["sent_time"] for e in log]
    assert max(sent) - min(sent) < 0.5  # twelve sent within half a second, none refused
    assert emu.control.rate_stats()["max_all"] == 6


def test_network_and_answer_delays_are_slept_reads_and_writes_apart(api: Api, emu: EmulatorHandle) -> None:
    settings = emu.control.set_latency(
        network_delay=[0.1, 0.15], read_delay=[0.3, 0.4], write_delay=[0.6, 0.7]
    )
    assert settings["network_delay"] == [0.1, 0.15] and settings["write_delay"] == [0.6, 0.7]
    started = time.monotonic()
    assert api.get("/api/v4/account").status_code == 200
    read_time = time.monotonic() - started
    started = time.monotonic()
    assert api.post("/api/v4/contacts", [{"name": "slow"}]).status_code == 200
    write_time = time.monotonic() - started
    assert 0.5 <= read_time < 1.5
    assert 0.8 <= write_time < 2.0
    read, write = emu.control.requests()
    for entry, answer in ((read, (0.3, 0.4)), (write, (0.6, 0.7))):
        delays = entry["delays"]
        assert 0.1 <= delays["inbound"] <= 0.15 and 0.1 <= delays["outbound"] <= 0.15
        assert answer[0] <= delays["answer"] <= answer[1]
        way_in = entry["arrival_time"] - entry["sent_time"]
        assert delays["inbound"] - 1e-6 <= way_in < delays["inbound"] + 0.1


def test_the_same_seed_draws_the_same_delays(amocrm_emulator_factory: Callable[..., EmulatorHandle]) -> None:
    def delays(emu: EmulatorHandle, calls: int = 4) -> List[Dict[str, float]]:
        call = caller(emu)
        for _ in range(calls):
            call()
        return [e["delays"] for e in account_log(emu)[-calls:]]

    options = {"rate_limit_enabled": False, "network_delay": (0, 0.03), "answer_delay": (0, 0.03)}
    one = amocrm_emulator_factory(delay_seed=7, **options)
    two = amocrm_emulator_factory(delay_seed=7, **options)
    other = amocrm_emulator_factory(delay_seed=8, **options)
    drawn = delays(one)
    assert drawn == delays(two) and drawn != delays(other)
    assert all(0 <= d["inbound"] <= 0.03 and 0 <= d["answer"] <= 0.03 for d in drawn)
    one.control.set_latency(seed=7)  # reseeding restarts the sequence
    assert delays(one) == drawn


def test_slow_answers_overlap_instead_of_queueing(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(rate_limit_enabled=False, answer_delay=(1.0, 1.0))
    call = caller(emu)
    start = threading.Barrier(64)

    def together(method: str, body: Any = None) -> int:
        start.wait()
        path = "/api/v4/account" if method == "GET" else "/api/v4/contacts"
        return call(method, path, body).status_code

    with ThreadPoolExecutor(64) as pool:
        started = time.monotonic()
        reads = [pool.submit(together, "GET") for _ in range(64)]
        assert [f.result() for f in reads] == [200] * 64
        read_time = time.monotonic() - started
        start = threading.Barrier(32)
        started = time.monotonic()
        writes = [pool.submit(together, "POST", [{"name": f"c{n}"}]) for n in range(32)]
        assert [f.result() for f in writes] == [200] * 32
        write_time = time.monotonic() - started
    assert read_time < 4.0, f"64 one-second reads took {read_time:.1f} s: handled one after another"
    assert write_time < 4.0, f"32 one-second writes took {write_time:.1f} s: state lock held while waiting"
    assert len(emu.control.state()["entities"]["contacts"]) == 32


def test_a_write_is_applied_before_its_answer_leaves_then_the_answer_is_lost(
    api: Api, emu: EmulatorHandle
) -> None:
    emu.control.set_latency(network_delay=[0.5, 0.5], write_delay=[0.5, 0.5])
    emu.control.add_fault("drop", path="^/api/v4/leads$", method="POST", count=1)
    outcome: Dict[str, Any] = {}

    def send() -> None:
        try:
            api.post("/api/v4/leads", [{"name": "applied"}])
        except requests.ConnectionError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    time.sleep(0.7)  # arrived at ~0.5 s, amoCRM still working until ~1.0 s
    assert emu.control.state()["entities"]["leads"] == []
    while not emu.control.state()["entities"]["leads"]:
        assert time.monotonic() - started < 5
        time.sleep(0.02)
    applied_at = time.monotonic()
    assert sender.is_alive()  # the write is in amoCRM while its answer is still on the way
    sender.join(10)
    assert "error" in outcome and outcome["at"] - started >= 1.5 and outcome["at"] > applied_at
    [entry] = [e for e in emu.control.requests() if e["method"] == "POST"]
    assert entry["status"] == "drop" and entry["fault"]["action"] == "drop"
    # after_commit composes the same way: applied, then a 504 after the whole round trip
    emu.control.add_fault("after_commit", path="^/api/v4/leads$", method="POST", status=504, count=1)
    started = time.monotonic()
    assert api.post("/api/v4/leads", [{"name": "committed"}]).status_code == 504
    assert time.monotonic() - started >= 1.5
    assert [x["name"] for x in emu.control.state()["entities"]["leads"]] == ["applied", "committed"]


def test_refusals_skip_the_answer_delay_but_travel(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(
        rate_limit=1, block_after=0, network_delay=(0.1, 0.1), answer_delay=(1.0, 1.0)
    )
    call = caller(emu)
    emu.control.add_fault("status", path="^/api/v4/account$", status=502, count=1)
    started = time.monotonic()
    assert call().status_code == 502  # an injected failure answers at once: no answer delay
    assert call().status_code == 429  # the 502 counted: the limit answers at arrival, at once too
    assert 0.4 <= time.monotonic() - started < 1.0  # two round trips of 2 × 0.1 s each
    time.sleep(1.0)
    started = time.monotonic()
    assert call().status_code == 200
    assert 1.2 <= time.monotonic() - started < 2.0


def test_latency_settings_validate_and_reset_to_the_options(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(
        rate_limit_enabled=False, network_delay=(0.0, 0.01), write_delay=(0.0, 0.02)
    )
    latency = emu.control.state()["latency"]
    assert latency == {
        "network_delay": [0.0, 0.01],
        "read_delay": [0.0, 0.0],
        "write_delay": [0.0, 0.02],
        "delay_seed": 1,
    }
    with pytest.raises(RuntimeError, match="400"):
        emu.control.set_latency(network_delay=[0.3, 0.1])
    with pytest.raises(RuntimeError, match="400"):
        emu.control.set_latency(answer_delay=[-1, 0])
    assert emu.control.state()["latency"] == latency  # a refused setting changes nothing
    changed = emu.control.set_latency(answer_delay=[0.1, 0.2], read_delay=[0, 0], seed=5)
    assert (changed["read_delay"], changed["write_delay"], changed["delay_seed"]) == ([0, 0], [0.1, 0.2], 5)
    emu.control.reset()
    assert emu.control.state()["latency"] == latency


def test_subprocess_takes_the_delay_flags() -> None:
    with start_emulator(
        subprocess_mode=True,
        rate_limit_enabled=False,
        network_delay=(0.1, 0.1),
        answer_delay=(0.2, 0.3),
        write_delay=(0.4, 0.4),
        delay_seed=3,
    ) as emu:
        assert emu.control.state()["latency"] == {
            "network_delay": [0.1, 0.1],
            "read_delay": [0.2, 0.3],
            "write_delay": [0.4, 0.4],
            "delay_seed": 3,
        }
        started = time.monotonic()
        assert caller(emu)().status_code == 200
        assert 0.4 <= time.monotonic() - started < 2.0


def test_the_kernel_stamp_is_when_the_bytes_came_not_when_they_were_read() -> None:
    from tests.amocrm_emulator.transport import SO_TIMESTAMPNS, kernel_received_at

    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as client:
        conn, _ = server.accept()
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            # The kernel turns receive stamps on for the whole host lazily (net_enable_timestamp
            # defers it to a work queue) when no other socket wanted them: the first bytes after
            # that may come unstamped (1 run in 12 alone). Exchange bytes until they come stamped.
            for _ in range(50):
                client.sendall(b"w")
                warm = kernel_received_at(conn)
                assert conn.recv(1) == b"w"
                if warm is not None:
                    break
                time.sleep(0.02)
            sent = time.monotonic()
            client.sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(0.3)
            stamp = kernel_received_at(conn)
            assert stamp is not None and sent - 0.01 <= stamp < sent + 0.1
            assert conn.recv(100) == b"GET / HTTP/1.1\r\n"      # only peeked
            client.close()
            assert kernel_received_at(conn) is None               # end of stream


def test_a_kernel_stamp_is_converted_with_clocks_read_together_even_if_the_thread_stalls_between(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread descheduled between reading the two clocks would stamp a request as early as it
    stalled; the conversion takes the tightest of a few pairs of reads."""
    from tests.amocrm_emulator import transport

    real_time = time.time
    truth = real_time() - time.monotonic()
    stalls = iter([0.05, 0.05])

    def stalling_time() -> float:
        time.sleep(next(stalls, 0.0))     # the first two reads stall 50 ms, as a busy machine does
        return real_time()

    monkeypatch.setattr(transport.time, "time", stalling_time)
    assert abs(transport.wall_ahead_of_monotonic() - truth) < 0.005


def test_a_request_is_taken_in_when_it_came_even_if_the_emulator_reads_it_late(emu: EmulatorHandle) -> None:
    """The emulator's thread waking late (a busy machine) is not network time: the gateway
    counts the request from when its bytes reached the host (issue 16). Another process
    writes the request while this one (the emulator's) holds the GIL for half a second."""
    token = emu.tokens()["access_token"]
    host, port = emu.url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    request = (f"GET /api/v4/account HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
               "\r\n").encode()
    writer = ("import socket, sys, time\n"
              "time.sleep(0.15)\n"
              "socket.socket(fileno=int(sys.argv[1])).sendall(sys.stdin.buffer.read())\n"
              "print(time.monotonic(), flush=True)\n")
    try:
        conn.request("GET", "/api/v4/account", headers=headers)   # the connection's thread is up
        assert conn.getresponse().read()
        fd = conn.sock.fileno()
        child = subprocess.Popen([sys.executable, "-c", writer, str(fd)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, pass_fds=[fd])
        child.stdin.write(request)
        child.stdin.close()
        held_from = time.monotonic()
        ctypes.PyDLL(None).usleep(500_000)   # a foreign call that keeps the GIL: no thread here runs
        held_until = time.monotonic()
        sent = float(child.stdout.read())
        assert child.wait(10) == 0
        response = http.client.HTTPResponse(conn.sock)   # the answer to the child's request
        response.begin()
        assert response.status == 200 and response.read()
    finally:
        conn.close()
    assert held_from < sent < held_until - 0.1, "the request was written while the GIL was held"
    entry = [e for e in emu.control.requests() if e["path"] == "/api/v4/account"][-1]
    assert entry["sent_time"] < held_until - 0.05, "stamped when read, not when it came"
    assert sent - 0.01 <= entry["sent_time"] <= sent + 0.05
    assert entry["arrival_time"] == entry["sent_time"]                      # no network delay set
