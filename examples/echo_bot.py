"""Answers every message with its text reversed: python examples/echo_bot.py PROFILE_DIR [RELAY_URL]"""

import asyncio
import sys

from engine.messenger import Direction, MessageReceived, Messenger


async def main(profile: str, relay: str | None) -> None:
    bot = await Messenger.open(profile, transport_url=relay)
    async with bot, bot.events() as events:
        await bot.start()
        print(f"echo bot {bot.identity.chat_key} listening", flush=True)
        async for event in events:
            if isinstance(event, MessageReceived) and event.message.direction == Direction.IN:
                await bot.send_text(event.message.from_key, event.message.text[::-1])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
