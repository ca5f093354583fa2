"""Our text rendering against WebShop's real pages: the HTML in ``webshop/mocks`` (rendered
by WebShop's site) converted to text exactly as WebShop's text env does (BeautifulSoup,
visible text nodes, `` [SEP] ``), versus ``pages.observation`` of the same content, which
never builds HTML. The product fields are read from the page's own elements."""

from __future__ import annotations

from pathlib import Path

import pytest

bs4 = pytest.importorskip("bs4")

from ipr_gym.webshop.catalog import Product  # noqa: E402
from ipr_gym.webshop.html import render_html  # noqa: E402
from ipr_gym.webshop.pages import clickables, observation, segment  # noqa: E402
from ipr_gym.webshop.state import ITEM, RESULTS, SUB, ShopState  # noqa: E402


def webshop_text(html: str) -> str:
    """WebShop's ``convert_html_to_text(html, simple=True)``."""
    ignore = {"style", "script", "head", "title", "meta", "[document]"}
    soup = bs4.BeautifulSoup(html, "html.parser")
    texts = [
        t for t in soup.find_all(string=True)
        if t.parent.name not in ignore and not isinstance(t, bs4.element.Comment)
    ]  # fmt: skip
    return " [SEP] ".join(t.strip() for t in texts if t != "\n")


def webshop_clickables(html: str) -> list[str]:
    """WebShop's ``get_available_actions()['clickables']``."""
    soup = bs4.BeautifulSoup(html, "html.parser")
    keys = {
        b.get_text().lower(): None
        for b in soup.find_all(class_="btn") + soup.find_all(class_="product-link")
    }
    for opt in soup.select('input[type="radio"]'):
        keys[opt.get("value")] = None
    return list(keys)


@pytest.fixture(scope="module")
def mocks(shared_data: Path) -> dict[str, str]:
    folder = shared_data / "webshop" / "mocks"
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}


def instruction_of(soup) -> str:
    return soup.find(id="instruction-text").h4.contents[-1].strip()


def make_product(asin: str, title: str, price: str, **kw) -> Product:
    fields = dict(
        asin=asin, title=title, description="", bullets=(), pricing=(1.0,), price_tag=price,
        options={}, option_images={}, attributes=(), category="", query="", product_category="",
        image="",
    )  # fmt: skip
    fields.update(kw)
    return Product(**fields)


def test_results_page_matches_webshop(mocks):
    html = mocks["mock_parse_results_ws"]
    soup = bs4.BeautifulSoup(html, "html.parser")
    products = {}
    for link in soup.find_all(class_="product-link"):
        box = link.find_parent(class_="searched-product")
        title = box.find(class_="product-title").contents[0]
        price = box.find(class_="product-price").contents[0]
        products[link.get_text()] = make_product(link.get_text(), title, price)
    listed = tuple(products)
    assert len(listed) == 10
    padding = tuple(f"B0PAD{i:05d}" for i in range(40))  # 50 results, as the page says
    state = ShopState(page=RESULTS, keywords=("red", "basketball", "shoes"),
                      results=listed + padding, page_no=1)  # fmt: skip
    assert observation(state, instruction_of(soup), products) == webshop_text(html)
    assert list(clickables(state, products)) == webshop_clickables(html)
    # the site's page for this state carries the same information as WebShop's
    ours = render_html(state, instruction_of(soup), products, "/s/x")
    assert webshop_text(ours) == webshop_text(html)
    assert webshop_clickables(ours) == webshop_clickables(html)


def test_item_page_matches_webshop(mocks):
    html = mocks["mock_parse_item_page_ws"]
    soup = bs4.BeautifulSoup(html, "html.parser")
    options: dict[str, tuple[str, ...]] = {}
    for radio in soup.select('input[type="radio"]'):
        options[radio["name"]] = (*options.get(radio["name"], ()), radio["value"])
    title = soup.find("h2").get_text()
    price = soup.find("h4", string=lambda s: s and s.startswith("Price: ")).get_text()[7:]
    asin = "B09P87V3LZ"
    products = {asin: make_product(asin, title, price, options=options)}
    state = ShopState(page=ITEM, keywords=("red", "basketball", "shoes"), page_no=1, asin=asin)
    assert observation(state, instruction_of(soup), products) == webshop_text(html)
    assert list(clickables(state, products)) == webshop_clickables(html)
    ours = render_html(state, instruction_of(soup), products, "/s/x")
    assert webshop_text(ours) == webshop_text(html)
    assert webshop_clickables(ours) == webshop_clickables(html)


@pytest.mark.parametrize(
    ("mock", "sub"),
    [("mock_parse_item_page_ws_desc", "Description"), ("mock_parse_item_page_ws_feat", "Features")],
)
def test_sub_pages_match_webshop(mocks, mock, sub):
    html = mocks[mock]
    soup = bs4.BeautifulSoup(html, "html.parser")
    texts = [p.get_text() for p in soup.find_all(class_="product-info")]
    asin = "B09P87V3LZ"
    fields = {"description": texts[0]} if sub == "Description" else {"bullets": tuple(texts)}
    products = {asin: make_product(asin, "t", "$1", **fields)}
    state = ShopState(page=SUB, keywords=("red",), page_no=1, asin=asin, sub_page=sub)
    assert observation(state, instruction_of(soup), products) == webshop_text(html)
    assert list(clickables(state, products)) == webshop_clickables(html)


@pytest.mark.parametrize("text", ["", " ", "  \t", "\n", " \n ", " x ", "\xa0x\xa0", "a\nb"])
def test_segment_follows_beautifulsoup_whitespace_rules(text):
    html = f"<html><body><h4>A</h4><p>{text}</p><h4>B</h4></body></html>"
    expected = webshop_text(html).split(" [SEP] ")[1:-1]
    assert list(segment(text)) == expected


@pytest.mark.parametrize("catalog", ["embedded", "fixture"])
def test_site_html_reads_as_the_text_observation(catalog, installed_data):
    """Random walks: WebShop's text env reading our HTML gets our text observation and
    our clickables, page after page (done pages included)."""
    import random

    import gymnasium as gym

    env = gym.make("ipr/WebShop-v0", catalog=catalog, split="all", data_dir=str(installed_data))
    shop = env.unwrapped
    products = shop.world.catalog.by_asin
    rng = random.Random(1)
    pages = set()
    for _ in range(40):
        _, info = env.reset(options={"task": rng.choice(shop.tasks)})
        for _ in range(12):
            state = shop.state
            html = render_html(state, shop.instruction, products, "/s/x")
            text = observation(state, shop.instruction, products)
            assert webshop_text(html) == text, state
            assert webshop_clickables(html) == list(clickables(state, products)), state
            pages.add(state.page)
            valid = info["valid_actions"]
            word = rng.choice(["shoes", "dress", "shampoo", "table", "coffee", "black"])
            action = rng.choice(valid) if valid and rng.random() < 0.85 else f"search[{word}]"
            _, _, done, truncated, info = env.step(action)
            if done or truncated:
                html = render_html(shop.state, shop.instruction, products, "/s/x")
                assert webshop_text(html) == observation(shop.state, shop.instruction, products)
                pages.add(shop.state.page)
                break
    assert pages >= {"search", "results", "item", "sub", "done"}


# WebShop's results and reviews pages, as its text env renders them (written here from
# WebShop's templates of IPR's and ETO's observations: "Page N (Total results: M)", "< Prev"
# from page 2, "Next >" on every page; a reviews card with one block per review and
# nothing when there is none), reduced to what its text conversion reads.
WEBSHOP_RESULTS = """<html><body>
<div id="instruction-text"><h4>Instruction:<br>{{ instruction }}</h4></div>
<form><button type="submit" class="btn btn-success">Back to Search</button></form>
<div><h3>Page {{ page }} (Total results: {{ total }})</h3>
{% if page > 1 %}<form><button class="btn btn-primary">&lt; Prev</button></form>
<form><button class="btn btn-primary">Next &gt;</button></form>
{% else %}<div></div><form><button class="btn btn-primary">Next &gt;</button></form>
{% endif %}</div>
{% for item in products %}<div class="searched-product">
<h4 class="product-asin"><a class="product-link" href="#">{{ item.asin }}</a></h4>
<h4 class="product-title">{{ item.title }}</h4><h5 class="product-price">{{ item.price_tag }}</h5>
</div>{% endfor %}
</body></html>"""
WEBSHOP_REVIEWS = """<html><body>
<div id="instruction-text"><h4>Instruction:<br>{{ instruction }}</h4></div>
<form><button class="btn btn-success">Back to Search</button></form>
<form><button class="btn btn-primary">&lt; Prev</button></form>
<div class="card card-body">{% for review in reviews %}<div class="card">
<h4>"{{ review.title }}"</h4><p><span>{{ review.score }}</span></p><p>{{ review.body }}</p>
</div>{% endfor %}</div>
</body></html>"""


@pytest.mark.parametrize(("total", "page"), [(50, 1), (50, 5), (50, 6), (3, 1), (0, 1)])
def test_results_pages_read_as_webshops_template(total, page):
    import jinja2

    asins = tuple(f"B0TEST{i:04d}" for i in range(total))
    products = {a: make_product(a, f"product {a}", "$1.0") for a in asins}
    state = ShopState(page=RESULTS, keywords=("x",), results=asins, page_no=page)
    instruction = "i need a thing, and price lower than 10.00 dollars"
    listed = [products[a] for a in asins[(page - 1) * 10 : page * 10]]
    html = jinja2.Template(WEBSHOP_RESULTS).render(
        instruction=instruction, page=page, total=total, products=listed
    )
    assert observation(state, instruction, products) == webshop_text(html)
    assert list(clickables(state, products)) == webshop_clickables(html)


@pytest.mark.parametrize("reviews", [0, 2])
def test_reviews_page_reads_as_webshops_template(reviews):
    import jinja2

    from ipr_gym.webshop.catalog import Review

    given = tuple(Review(f"title {i}", 4 - i, f"body {i}") for i in range(reviews))
    asin = "B0TEST0001"
    products = {asin: make_product(asin, "t", "$1", reviews=given)}
    state = ShopState(page=SUB, keywords=("x",), page_no=1, asin=asin, sub_page="Reviews")
    html = jinja2.Template(WEBSHOP_REVIEWS).render(instruction="i need a thing", reviews=given)
    assert observation(state, "i need a thing", products) == webshop_text(html)
    assert list(clickables(state, products)) == webshop_clickables(html)
