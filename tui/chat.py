"""The conversation: the user's prompts, the streamed Markdown answers, and the prompt input."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Label, Markdown, Static

WELCOME = """\
**Ask about your users.** For example:

- *What segments are there?*
- *Describe segment 2* · *How do segments 1 and 3 differ?*
- *Recommend items for user u00042 and explain why*

Every number in an answer comes from a tool call: the **Trace** tab shows each one.
"""


class UserMessage(Vertical):
    """A prompt the user sent (shown as typed: it is never read as markup)."""

    def __init__(self, text: str) -> None:
        super().__init__(classes="message user")
        self.text = text

    def compose(self) -> ComposeResult:
        yield Label("you", classes="who")
        yield Static(self.text, markup=False, classes="body")


class AnswerMessage(Vertical):
    """One answer, streamed token by token into a Markdown widget."""

    def __init__(self, responder: str, text: str = "") -> None:
        super().__init__(classes="message answer")
        self.responder = responder
        self.initial = text
        self.text = text  # what has been written so far (the Markdown source)
        self._stream = None

    def compose(self) -> ComposeResult:
        yield Label(self.responder, classes="who")
        yield Markdown(self.initial, classes="body")

    def set_state(self, state: str) -> None:
        """A short word after the responder's name ('answering…', 'cancelled'); empty to clear."""
        who = self.query_one(".who", Label)
        who.update(f"{self.responder} · {state}" if state else self.responder)

    async def append(self, fragment: str) -> None:
        if self._stream is None:
            # One stream per answer: it batches fragments when they arrive faster than the widget renders.
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        self.text += fragment
        await self._stream.write(fragment)

    async def finish(self, answer: str | None = None) -> None:
        """Flush the stream; show ``answer`` instead when the tokens did not spell it out."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if answer is not None and answer.strip() and answer.strip() != self.text.strip():
            self.text = answer
            await self.query_one(Markdown).update(answer)


class Note(Static):
    """A line in the conversation that is not an answer: a cancelled turn, an error."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(text, markup=False, classes=f"note {kind}")


class ChatView(VerticalScroll):
    """The scrolling conversation. Anchored: it follows new text only while the reader is at the bottom."""

    can_focus = False

    def on_mount(self) -> None:
        self.anchor()

    async def show_history(self, history: list[tuple[str, str]], responder: str) -> None:
        await self.remove_children()
        if not history:
            await self.mount(Markdown(WELCOME, classes="welcome"))
            return
        widgets = [UserMessage(text) if role == "user" else AnswerMessage(responder, text) for role, text in history]
        await self.mount_all(widgets)
        self.anchor()

    async def add_user(self, text: str) -> None:
        for welcome in self.query(".welcome"):
            await welcome.remove()
        await self.mount(UserMessage(text))
        self.anchor()  # the user just acted: follow the answer again even if they had scrolled up

    async def add_answer(self, responder: str) -> AnswerMessage:
        message = AnswerMessage(responder)
        await self.mount(message)
        return message

    async def add_note(self, text: str, kind: str = "info") -> None:
        await self.mount(Note(text, kind))


class PromptInput(Input):
    """The prompt box; ``locked`` while a turn runs.

    A locked box still takes typing (so the next question can be drafted and the
    interface visibly keeps up), but the app refuses to submit it until the turn
    ends: a prompt is never queued behind a running one.
    """

    locked: reactive[bool] = reactive(False)

    IDLE = "Ask about segments, users, recommendations…"

    def __init__(self) -> None:
        super().__init__(placeholder=self.IDLE, id="prompt")
        self.busy_text = "Answering…  (Esc to cancel)"

    def lock_for(self, why: str) -> None:
        self.busy_text = why
        if self.locked:
            self.placeholder = why
        self.locked = True

    def watch_locked(self, locked: bool) -> None:
        self.placeholder = self.busy_text if locked else self.IDLE
        self.set_class(locked, "locked")
        self.focus()
