"""A realistic chat request used by `thrifty demo` and the benchmarks (about 4 KB as JSON).

A customer-support assistant: a long static system prompt and tool definitions (the part a
provider's prompt cache can serve), then a short conversation.
"""

SYSTEM_PROMPT = (
    "You are Ada, the support assistant for Northwind Outfitters, an online retailer of outdoor "
    "gear. Answer in the customer's language, in at most five short sentences, and never invent "
    "order details: look them up with the tools. Policies you must apply:\n"
    "1. Returns: unused items within 30 days of delivery get a full refund to the original "
    "payment method; used items within 30 days get store credit minus a 15% restocking fee; "
    "after 30 days, only warranty claims.\n"
    "2. Warranty: two years on manufacturing defects for tents, packs and footwear; one year on "
    "electronics such as headlamps and GPS units. Wear and tear is not covered.\n"
    "3. Shipping: standard shipping is free over $75 and takes 3-5 business days; express costs "
    "$14.95 and takes 1-2 business days; we do not ship to PO boxes for items over 20 lb.\n"
    "4. Price matching: we match authorized US retailers' advertised prices within 14 days of "
    "purchase, excluding clearance, bundles and membership prices.\n"
    "5. Escalation: hand over to a human agent (tool: escalate) when the customer asks for one, "
    "mentions a safety incident or injury, or the order value exceeds $1,500.\n"
    "Style: friendly and direct; no emojis; cite the policy number you applied; if you are not "
    "sure, say so and offer to escalate."
)


def _catalog_excerpt() -> str:
    """A product table like the ones support bots carry in their system prompt (~5k tokens):
    it makes the static prefix long enough for every provider's prompt cache (1024-4096)."""
    kinds = [
        ("TENT", "tent", ["Alpine 2P", "Ridge 3P", "Basecamp 6P", "Solo UL", "Storm 4P"], 2),
        ("PACK", "backpack", ["Trail 28L", "Summit 45L", "Expedition 70L", "Daypack 18L"], 2),
        ("BOOT", "hiking boot", ["Granite Mid", "Scree Low", "Tundra GTX", "Canyon Trail"], 2),
        ("BAG", "sleeping bag", ["Ember 20F", "Polar 0F", "Breeze 40F", "Quilt 30F"], 2),
        ("LAMP", "headlamp", ["Beacon 400", "Beacon 900", "Glow 200 USB-C"], 1),
        ("GPS", "GPS unit", ["Compass X2", "Compass X5 Pro"], 1),
        ("STOVE", "camp stove", ["Flare Canister", "Flare Duo", "Kettle Jet"], 2),
        ("JKT", "rain jacket", ["Drizzle", "Monsoon 3L", "Squall Packable"], 2),
        ("POLE", "trekking pole pair", ["Carbon Lite", "Alu Trek"], 2),
        ("FILT", "water filter", ["Stream Squeeze", "Gravity 4L"], 1),
    ]
    lines = ["Catalog excerpt (SKU | product | price USD | weight | warranty years | notes):"]
    for prefix, kind, names, warranty in kinds:
        for i, name in enumerate(names):
            for size, factor in (("S", 0.9), ("M", 1.0), ("L", 1.15), ("XL", 1.25)):
                sku = f"{prefix}-{name.split()[0][:3].upper()}{i + 1}-{size}"
                price = round((49 + 37 * len(name) + 23 * i) * factor, 2)
                weight = round((0.4 + 0.35 * len(name) % 3.1 + 0.2 * i) * factor, 2)
                note = "ships oversize" if weight > 2.5 else "standard shipping"
                lines.append(
                    f"{sku} | {name} {kind}, size {size} | {price:.2f} | {weight} kg | "
                    f"{warranty} | {note}"
                )
    return "\n".join(lines)


SYSTEM_PROMPT = SYSTEM_PROMPT + "\n\n" + _catalog_excerpt()

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Fetch an order by its number: items, prices, status and tracking.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string", "description": "e.g. NW-2024-118842"},
                    "include_tracking": {"type": "boolean", "default": True},
                },
                "required": ["order_number"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_return",
            "description": "Open a return for items of an order; returns an RMA number and label.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string"},
                    "skus": {"type": "array", "items": {"type": "string"}},
                    "reason": {
                        "type": "string",
                        "enum": ["defective", "wrong_item", "not_as_described", "changed_mind"],
                    },
                    "used": {"type": "boolean"},
                },
                "required": ["order_number", "skus", "reason", "used"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "escalate",
            "description": "Hand the conversation to a human agent with a one-line summary.",
            "parameters": {
                "type": "object",
                "properties": {"summary": {"type": "string"}},
                "required": ["summary"],
            },
        },
    },
]


def support_request(model: str = "gpt-4o-mini") -> dict:
    """A fresh copy of the sample request for `model` (OpenAI chat shape)."""
    return {
        "model": model,
        "temperature": 0.2,
        "max_tokens": 400,
        "tools": [dict(t) for t in TOOLS],
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": "Hi, my tent arrived with a broken pole. Order NW-2024-118842.",
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "lookup_order",
                            "arguments": '{"order_number": "NW-2024-118842"}',
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": '{"status": "delivered", "delivered_on": "2026-11-12", "items": '
                '[{"sku": "TENT-ALP-2", "name": "Alpine 2P tent", "price": 329.0}], '
                '"total": 329.0, "tracking": "1Z999AA10123456784"}',
            },
            {
                "role": "assistant",
                "content": "I'm sorry about the pole. Your Alpine 2P tent was delivered on "
                "November 12, so it is within the 30-day window and covered as a defect "
                "(policy 2). Would you like a replacement or a refund?",
            },
            {
                "role": "user",
                "content": "A refund please. Do I have to pay for the return shipping?",
            },
        ],
    }


def benchmark_request(target_bytes: int = 4096) -> dict:
    """A chat request whose compact JSON is `target_bytes` long (the request_key benchmark's
    "4 KB chat request"): the support policy, two tools and a short conversation."""
    policy = SYSTEM_PROMPT.split("\n\nCatalog excerpt")[0]
    request = {
        "model": "gpt-6.1-terra",
        "temperature": 0.2,
        "max_tokens": 400,
        "tools": [dict(t) for t in TOOLS[:2]],
        "messages": [
            {"role": "system", "content": policy},
            {"role": "user", "content": "Hi, my tent arrived with a broken pole."},
            {"role": "assistant", "content": "Sorry to hear that. What is your order number?"},
            {"role": "user", "content": ""},
        ],
    }
    import json

    size = len(json.dumps(request, separators=(",", ":")).encode())
    if size > target_bytes:
        raise ValueError(f"benchmark request base is {size} bytes, above {target_bytes}")
    filler = "It is order NW-2024-118842, delivered last week; the pole snapped on first setup. "
    text = (filler * (target_bytes // len(filler) + 1))[: target_bytes - size]
    request["messages"][-1]["content"] = text
    return request
