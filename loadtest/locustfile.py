"""Locust users for the soak: ingredient rows through the ingest API at a set rate, optional
bursts, and menu submissions by signed-in users.

Configured by env (loadtest/soak.py sets them):
  SOUS_ROWS_PER_5MIN    steady ingest rate (default 60)
  SOUS_BURST_ROWS       rows in one burst request (0: no bursts)
  SOUS_BURST_EVERY_S    seconds between bursts (default 120)
  SOUS_MENUS_PER_HOUR   menu submissions per hour (0: none)
  SERVICE_API_KEY, SUPABASE_JWT_SECRET   credentials of the stack under test
"""

from __future__ import annotations

import io
import os
import random
import uuid

from locust import HttpUser, constant_pacing, task

from core.auth import mint_token
from loadtest.names import NameSource

ROWS_PER_5MIN = float(os.environ.get("SOUS_ROWS_PER_5MIN", "60"))
BURST_ROWS = int(os.environ.get("SOUS_BURST_ROWS", "0"))
BURST_EVERY_S = float(os.environ.get("SOUS_BURST_EVERY_S", "120"))
MENUS_PER_HOUR = float(os.environ.get("SOUS_MENUS_PER_HOUR", "0"))
# One row per request below 2 rows/s (a scraper's trickle); larger batches above it.
ROWS_PER_REQUEST = max(1, int(ROWS_PER_5MIN / 300 / 2))
NAMES = NameSource(seed=int(os.environ.get("SOUS_SEED", "7")))


def _service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['SERVICE_API_KEY']}"}


def _post_rows(user: HttpUser, n: int, name: str) -> None:
    rows = [{"raw_name": line, "source": random.choice(["scraper", "recipe"])} for line in NAMES.batch(n)]
    with user.client.post(
        "/api/ingredients/queue",
        json={"rows": rows},
        headers=_service_headers(),
        name=name,
        catch_response=True,
    ) as resp:
        if resp.status_code != 200 or len(resp.json().get("ids", [])) != n:
            resp.failure(f"ingest answered {resp.status_code}: {resp.text[:200]}")


class IngredientFeeder(HttpUser):
    """Posts rows at SOUS_ROWS_PER_5MIN."""

    fixed_count = 1
    wait_time = constant_pacing(300 / ROWS_PER_5MIN * ROWS_PER_REQUEST)

    @task
    def post_rows(self) -> None:
        _post_rows(self, ROWS_PER_REQUEST, "/api/ingredients/queue")


class BurstFeeder(HttpUser):
    """Every SOUS_BURST_EVERY_S, a burst of SOUS_BURST_ROWS rows in one request (a bulk import)."""

    fixed_count = 1 if BURST_ROWS > 0 else 0
    wait_time = constant_pacing(BURST_EVERY_S)

    @task
    def burst(self) -> None:
        _post_rows(self, BURST_ROWS, "/api/ingredients/queue [burst]")


def render_menu(rng: random.Random) -> bytes:
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 - only menu users draw

    img = Image.new("RGB", (900, 1100), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 30)
    except OSError:
        font = ImageFont.load_default()
    y = 40
    for heading in rng.sample(["Starters", "Mains", "Desserts", "Drinks", "Sides"], 3):
        draw.text((60, y), heading.upper(), fill="black", font=font)
        y += 60
        for _ in range(4):
            style = rng.choice(["Grilled", "Roast", "Spicy", "House"])
            item = f"{style} {rng.choice(['Chicken', 'Salmon', 'Tofu', 'Salad', 'Soup'])}"
            draw.text((80, y), item, fill="black", font=font)
            draw.text(
                (700, y), f"${rng.randint(4, 30)}.{rng.choice(['00', '50', '95'])}", fill="black", font=font
            )
            y += 50
        y += 30
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class MenuSubmitter(HttpUser):
    """A signed-in user submitting a menu photo, SOUS_MENUS_PER_HOUR times an hour in all."""

    fixed_count = 1 if MENUS_PER_HOUR > 0 else 0
    wait_time = constant_pacing(3600 / MENUS_PER_HOUR if MENUS_PER_HOUR > 0 else 3600)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def submit(self) -> None:
        # A fresh user each time: free-plan quotas are per user, and the soak measures the
        # pipeline, not the quota (tests cover quotas).
        token = mint_token(os.environ["SUPABASE_JWT_SECRET"], uuid.uuid4())
        with self.client.post(
            "/api/extraction/submit",
            files={"file": ("menu.png", render_menu(self.rng), "image/png")},
            headers={"Authorization": f"Bearer {token}"},
            name="/api/extraction/submit",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"submit answered {resp.status_code}: {resp.text[:200]}")
