"""Coffee ordering (``orderDrink``) and questions about the menu (``askPrice``, ``askMenu``).

``orderDrink`` is complete when drink and size are known.

The menu (drinks, sizes, prices, synonyms) is ``dialog/data/coffee.json``. A
missing drink or size is asked for; an unknown one is refused by name with the
options. A complete order is placed at once (stored as a ``coffee_order``
record) and can be corrected in the next turns ("no, make it large"), which
changes the stored order and its price.

A question is answered from the same price table and never places an order: "how much is
a medium cappuccino" says the price, "how much is a cappuccino" says the three sizes, "what
drinks do you have" reads the menu. An order right after a price question ("okay, I'll have
one") takes the drink and size that were asked about.
"""

from __future__ import annotations

from typing import Any

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, skill
from dialog.speech_format import parse_int, spoken_list
from dialog.state import Frame

_SHOT_WORDS = {"single": 1, "double": 2, "triple": 3, "quad": 4}


def _with_noun(amount: str | None, noun: str, *same_kind: str) -> str:
    """``("a bit of", "milk") -> "a bit of milk"``; ``("skim milk", "milk") -> "skim milk"``;
    ``("a lot of cream", "milk", "cream") -> "a lot of cream"`` (not "a lot of cream milk")."""
    if not amount:
        return ""
    low = amount.lower()
    return amount if any(w in low for w in (noun, *same_kind)) else f"{amount} {noun}"


def spoken_price(amount: float, currency: str = "dollars") -> str:
    """``4.5 -> "four fifty"``, ``3.0 -> "three dollars"``, ``0.75 -> "seventy five cents"``."""
    cents = int(round(amount * 100))
    whole, frac = divmod(cents, 100)
    if whole == 0:
        return f"{spoken_number(frac)} cents"
    if frac == 0:
        return f"{spoken_number(whole)} {currency if whole != 1 else currency.rstrip('s')}"
    return f"{spoken_number(whole)} {spoken_number(frac) if frac >= 10 else 'oh ' + spoken_number(frac)}"


@skill("coffee", intents=("orderDrink", "askPrice", "askMenu"))
class CoffeeSkill(Skill):
    slots = {
        "orderDrink": ("coffeeDrink", "size", "roast", "numberOfShots", "milkAmount", "sugarAmount"),
        "askPrice": ("coffeeDrink", "size"),
        "askMenu": (),
    }

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        menu = config.load_json("coffee.json")
        self.sizes: list[str] = menu["sizes"]
        self.size_synonyms: dict[str, str] = menu.get("size_synonyms", {})
        self.drinks: dict[str, list[float]] = menu["drinks"]
        self.drink_synonyms: dict[str, str] = menu.get("drink_synonyms", {})
        self.extra_shot: float = float(menu.get("extra_shot", 0.0))
        self.currency: str = menu.get("currency", "dollars")

    def _drink(self, frame: Frame) -> str | None:
        for raw in (frame.norm("coffeeDrink"), frame.get("coffeeDrink")):
            d = (raw or "").lower().strip().removeprefix("a ").removeprefix("an ")
            d = self.drink_synonyms.get(d, d)
            if d in self.drinks:
                return d
            if d.endswith("s") and d[:-1] in self.drinks:
                return d[:-1]
        return None

    def _size(self, frame: Frame) -> str | None:
        for raw in (frame.norm("size"), frame.get("size")):
            s = (raw or "").lower().strip()
            s = self.size_synonyms.get(s, s)
            if s in self.sizes:
                return s
        return None

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        if frame.intent == "askMenu":
            return []
        if frame.intent == "askPrice":
            return ["coffeeDrink"]
        self._after_price_question(ctx, frame)
        return ["coffeeDrink", "size"]

    @staticmethod
    def _after_price_question(ctx: SkillContext, frame: Frame) -> None:
        """"How much is a large latte?" "Four fifty." "Okay, one please": the order takes the drink asked about."""
        last = ctx.state.last_done
        if (
            last is None
            or last.intent != "askPrice"
            or ctx.state.turns - last.finished_turn > 2
            or frame.get("coffeeDrink")
        ):
            return
        for slot in ("coffeeDrink", "size"):
            if slot in last.slots and slot not in frame.slots:
                frame.slots[slot] = last.slots[slot]

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "size":
            return list(self.sizes)
        if slot == "coffeeDrink":
            return list(self.drinks)
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        low = f" {text.lower()} "
        table = self.size_synonyms if slot == "size" else self.drink_synonyms if slot == "coffeeDrink" else {}
        for word, canon in sorted(table.items(), key=lambda kv: -len(kv[0])):
            if f" {word} " in low:
                return word, canon
        return super().extract(ctx, frame, slot, text)

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, object]:
        v = dict(super().ask_vars(ctx, frame, slot))
        v["drink"] = self._drink(frame) or frame.get("coffeeDrink") or "drink"
        v["options"] = spoken_list(self.sizes if slot == "size" else list(self.drinks)[:4], "or")
        return v

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.get("coffeeDrink") and self._drink(frame) is None:
            bad = frame.get("coffeeDrink")
            frame.drop("coffeeDrink")
            return Reply("orderDrink.unknown_drink", {"said": bad, "options": spoken_list(list(self.drinks)[:5], "or")},
                         action="ask_slot", ask="coffeeDrink")  # fmt: skip
        if frame.get("size") and self._size(frame) is None:
            bad = frame.get("size")
            frame.drop("size")
            return Reply("orderDrink.unknown_size", {"said": bad, "options": spoken_list(self.sizes, "or")},
                         action="ask_slot", ask="size")  # fmt: skip
        return None

    def _order(self, frame: Frame) -> dict[str, Any]:
        drink = self._drink(frame) or "drip coffee"
        size = self._size(frame) or "medium"
        price = self.drinks[drink][self.sizes.index(size)]
        shots_said = (frame.get("numberOfShots") or "").lower()
        shots = next((n for w, n in _SHOT_WORDS.items() if w in shots_said), None) or parse_int(
            frame.norm("numberOfShots"), frame.get("numberOfShots")
        )
        if shots and shots > 1:
            price += self.extra_shot * (shots - 1)
        extras = [e for e in (_with_noun(frame.norm("roast"), "roast"),
                              shots and shots > 1 and f"{spoken_number(shots)} shots",
                              _with_noun(frame.norm("milkAmount"), "milk", "cream"),
                              _with_noun(frame.norm("sugarAmount"), "sugar", "sweetener")) if e]  # fmt: skip
        return {"drink": drink, "size": size, "price": round(price, 2), "extras": extras,
                "slots": frame.values()}  # fmt: skip

    def _vars(self, order: dict[str, Any]) -> dict[str, Any]:
        extras = order["extras"]
        return {"drink": order["drink"], "size": order["size"], "price": spoken_price(order["price"], self.currency),
                "extras": f" with {spoken_list(extras)}" if extras else ""}  # fmt: skip

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "askMenu":
            return Reply("askMenu.done", {"drinks": spoken_list(list(self.drinks)), "count": spoken_number(len(self.drinks))})
        if frame.intent == "askPrice":
            return self._price(frame)
        order = self._order(frame)
        record_id = ctx.store.add_record(ctx.session_id, "coffee_order", order)
        return Reply("orderDrink.done", self._vars(order), record={"record_id": record_id})

    def _price(self, frame: Frame) -> Reply:
        """The price of one size, or of every size when none was said; nothing is ordered."""
        drink = self._drink(frame) or "drip coffee"
        prices = self.drinks[drink]
        size = self._size(frame)
        if size is not None:
            price = spoken_price(prices[self.sizes.index(size)], self.currency)
            return Reply("askPrice.size", {"drink": drink, "size": size, "price": price})
        each = [f"{spoken_price(p, self.currency)} {s}" for s, p in zip(self.sizes, prices, strict=False)]
        return Reply("askPrice.all", {"drink": drink, "prices": spoken_list(each)})

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        record_id = done.record.get("record_id")
        if record_id is None or not correction.slots:
            return None
        merged = Frame(done.intent, {**done.slots, **correction.slots})
        bad = self.check(ctx, merged)
        if bad is not None:
            return Reply(bad.key, bad.vars, action="error")
        order = self._order(merged)
        ctx.store.update_record(int(record_id), order)
        return Reply("orderDrink.changed", self._vars(order), record={"record_id": record_id})
