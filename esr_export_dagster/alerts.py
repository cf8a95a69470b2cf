"""Where alerts go: Microsoft Teams and Slack, through Dagster's own integrations.

The support team watches the ESR Support channel in Teams and Slack monitoring channels. With neither
configured, alerts are logged at WARNING and shown on the sensor tick. Alert texts carry ids, counts,
dates, deaneries and post numbers only.
"""

from dagster import ConfigurableResource
from dagster_msteams import Card, MSTeamsResource
from dagster_msteams.adaptive_card import AdaptiveCard
from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk import WebClient

TEAMS = "teams"
SLACK = "slack"


class EsrSlackResource(SlackResource):
    """dagster-slack's resource, with an optional API address (a Slack proxy, or a test server)."""

    api_url: str | None = Field(default=None, description="Slack Web API base URL; Slack's own when unset.")

    def get_client(self) -> WebClient:
        if self.api_url:
            return WebClient(self.token, base_url=self.api_url.rstrip("/") + "/")
        return super().get_client()


class AlertChannelsResource(ConfigurableResource):
    """The channels alerts are posted to; each is optional."""

    teams: MSTeamsResource | None = None
    slack: EsrSlackResource | None = None
    slack_channel: str | None = Field(default=None, description="Slack channel, e.g. #esr-monitoring")

    def channels(self) -> list[str]:
        return [
            name for name, configured in ((TEAMS, self.teams), (SLACK, self.slack and self.slack_channel)) if configured
        ]

    def deliver(self, text: str, channels: list[str]) -> list[str]:
        """Post ``text`` to each of ``channels``; returns those that failed (to be tried again)."""
        failed = []
        for channel in channels:
            try:
                self._post(channel, text)
            except Exception:  # any failure of a channel must leave the alert queued, not crash the sensor
                failed.append(channel)
        return failed

    def _post(self, channel: str, text: str) -> None:
        if channel == TEAMS and self.teams is not None:
            client = self.teams.get_client()
            # As dagster-msteams' own failure sensor does: legacy connectors take hero cards, Workflows
            # webhooks adaptive cards.
            if client.is_legacy_webhook():
                card = Card()
                card.add_attachment(text_message=text.replace("\n", "<br>"))
            else:
                card = AdaptiveCard()
                for paragraph in text.split("\n"):
                    card.add_attachment(text_message=paragraph)
            client.post_message(payload=card.payload)
        elif channel == SLACK and self.slack is not None and self.slack_channel:
            self.slack.get_client().chat_postMessage(channel=self.slack_channel, text=text)
        else:
            raise ValueError(f"Alert channel {channel} is not configured")
