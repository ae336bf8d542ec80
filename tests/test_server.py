"""A real client against the real server: ``langgraph dev`` on 127.0.0.1 serving the prepared Beauty slice,
driven through ``langgraph_sdk`` (threads, ``runs.wait``, streamed node updates, a two-turn chat), a
``RemoteGraph``, the server's MCP endpoint, and the page in headless Chromium. One server start for all.
"""

from __future__ import annotations

import ast
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from server_helpers import REPO, free_port, start_langgraph, stop, wait_until_ready

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "runs" / "test-artifacts" / "page.png"


@pytest.fixture(scope="module")
def server(slice_settings, slice_prepared, tmp_path_factory) -> str:
    log = tmp_path_factory.mktemp("langgraph-dev") / "server.log"
    port = free_port()
    process = start_langgraph(slice_settings.home, slice_settings.dataset, port, log)
    try:
        wait_until_ready(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def client(server):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server)


def _ids(protocol, case: int) -> list:
    return [protocol.dataset.catalog.ids[i] for i in protocol.test.cases[case].prompt]


def _ranked(output: dict) -> list:
    return [(r["item_id"], r["title"]) for r in output["recommendations"]]


def test_runs_wait_serves_the_prepared_profile(client, slice_prepared):
    items = _ids(slice_prepared, 11)
    output = client.runs.wait(None, "semsr", input={"items": items, "k": 4})
    assert len(output["recommendations"]) == 4 and output["session"] == items
    assert output["profile"]["name"] == "fused" and all(r["reasons"] for r in output["recommendations"])


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_bad_request_is_http_422_with_the_api_text_and_writes_no_thread_state(server, client, slice_prepared):
    items = _ids(slice_prepared, 11)
    status, body = _post(f"{server}/runs/wait", {"assistant_id": "semsr", "input": {"items": items, "k": 0}})
    assert status == 422 and body == {"error": "InvalidRequest", "message": "k=0: must be an integer from 1 to 100"}
    thread = client.threads.create()["thread_id"]
    status, body = _post(f"{server}/threads/{thread}/runs/wait", {"assistant_id": "semsr", "input": {"items": "5788"}})
    assert status == 422 and "must be a list of item ids" in body["message"] and "\n" not in body["message"]
    assert not client.threads.get_state(thread)["values"]


def test_a_two_turn_conversation_through_langgraph_sdk(client, slice_prepared):
    catalog = slice_prepared.dataset.catalog
    first, second = _ids(slice_prepared, 30)[0], _ids(slice_prepared, 31)[0]
    thread = client.threads.create()["thread_id"]
    said = {"role": "user", "content": f"I looked at #{first}; something for dry skin please"}
    one = client.runs.wait(thread, "semsr", input={"messages": [said], "k": 5})
    reply = one["messages"][-1]
    assert reply["type"] == "ai" and len(one["messages"]) == 2 and one["session"] == [first]
    assert one["turn"]["query"] == "I looked at ; something for dry skin please"
    assert [r["rank"] for r in reply["additional_kwargs"]["semsr"]["recommendations"]] == [1, 2, 3, 4, 5]
    assert all(r["title"][:25] in reply["content"] for r in one["recommendations"])
    second_turn = {"role": "user", "content": "and this one too", "additional_kwargs": {"items": [second]}}
    two = client.runs.wait(thread, "semsr", input={"messages": [second_turn]})
    assert two["session"] == [first, second] and [m["type"] for m in two["messages"]] == ["human", "ai"] * 2
    assert len(two["recommendations"]) == 5 and not {first, second} & {r["item_id"] for r in two["recommendations"]}
    state = client.threads.get_state(thread)["values"]
    assert state["session"] == [first, second] and state["messages"][-1]["content"] == two["messages"][-1]["content"]
    # an item-based call joins the same thread's session
    three = client.runs.wait(thread, "semsr", input={"items": [catalog.ids[0]]})
    assert three["session"] == [first, second, catalog.ids[0]] and len(three["messages"]) == 4


def test_node_updates_stream_as_each_node_finishes(client, slice_prepared):
    items = _ids(slice_prepared, 32)
    chunks = list(client.runs.stream(None, "semsr", input={"items": items, "k": 3}, stream_mode="updates"))
    nodes = [node for chunk in chunks if chunk.event == "updates" for node in chunk.data]
    assert nodes[0] == "validate" and nodes[-1] == "explain"
    assert {"session_models", "session_semantics", "query_retrieval", "fuse"} <= set(nodes)
    final = next(chunk.data["explain"] for chunk in chunks if chunk.event == "updates" and "explain" in chunk.data)
    assert len(final["recommendations"]) == 3


def test_a_remote_graph_answers_like_the_sdk(server, client, slice_prepared):
    from langgraph.pregel.remote import RemoteGraph

    items = _ids(slice_prepared, 33)
    remote = RemoteGraph("semsr", url=server)
    request = {"items": items, "k": 5, "query": "a light moisturizer"}
    assert _ranked(remote.invoke(request)) == _ranked(client.runs.wait(None, "semsr", input=request))


def test_one_tool_call_through_the_servers_mcp_endpoint(server, client, slice_prepared):
    def rpc(method: str, params: dict) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        request = urllib.request.Request(f"{server}/mcp", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["result"]

    tools = {tool["name"]: tool for tool in rpc("tools/list", {})["tools"]}
    assert "semsr" in tools and "items" in tools["semsr"]["inputSchema"]["properties"]
    assert "Recommend next products" in tools["semsr"]["description"]
    items = _ids(slice_prepared, 34)
    result = rpc("tools/call", {"name": "semsr", "arguments": {"items": items, "k": 3}})
    assert not result.get("isError")
    answer = ast.literal_eval(result["content"][0]["text"])  # the server renders the output with repr()
    assert _ranked(answer) == _ranked(client.runs.wait(None, "semsr", input={"items": items, "k": 3}))


def _browser():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"headless browser missing: {missing}; install it with "
            "`apt-get install -y --no-install-recommends chromium chromium-driver` (.ci/run does)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_the_page_builds_a_session_and_shows_ten_ranked_titles(server, client):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        browser.get(f"{server}/semsr")
        WebDriverWait(browser, 30).until(lambda b: "products" in b.find_element(By.ID, "about").text)
        browser.find_element(By.ID, "search").send_keys("shampoo")
        found = "#results li.result"
        WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, found)) >= 3)
        results = browser.find_elements(By.CSS_SELECTOR, found)[:3]
        chosen = [element.get_attribute("data-id") for element in results]
        for element in results:
            element.click()
        session = browser.find_elements(By.CSS_SELECTOR, "#session li")
        assert [element.get_attribute("data-id") for element in session] == chosen
        browser.find_element(By.ID, "query").send_keys("for dry, damaged hair")
        browser.find_element(By.ID, "recommend").click()
        rows = "#recommendations tr.rec"
        WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, rows)) == 10)
        titles = [e.get_attribute("textContent") for e in browser.find_elements(By.CSS_SELECTOR, f"{rows} .title")]
        chips = [e.text for e in browser.find_elements(By.CSS_SELECTOR, f"{rows} .chip")]
        browser.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        status = browser.find_element(By.ID, "status").text
        explanation = browser.find_element(By.ID, "explanation").text
    finally:
        browser.quit()
    items = [int(i) for i in chosen]
    expected = client.runs.wait(None, "semsr", input={"items": items, "k": 10, "query": "for dry, damaged hair"})
    assert titles == [r["title"] for r in expected["recommendations"]] and len(set(titles)) == 10
    assert any(chip.startswith("query ") for chip in chips) and any(chip.startswith("vsknn ") for chip in chips)
    assert "10 recommendations for a session of 3 product(s)" in status and explanation == expected["explanation"]
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_catalogue_search_endpoint_and_its_bad_input(server):
    def get(path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{server}{path}", timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = get("/semsr/search?q=Nail%20polish&limit=5")
    assert status == 200 and 0 < len(body["items"]) <= 5
    assert all("nail" in i["title"].lower() and "polish" in i["title"].lower() for i in body["items"])
    counts = [i["sessions"] for i in body["items"]]
    assert counts == sorted(counts, reverse=True)
    assert get("/semsr/search?q=x&limit=0")[0] == 400 and get("/semsr/search?q=x&limit=abc")[0] == 400
