"""The feed service's blueprints: /follows, /timelines and /internal/events."""
from .events import bp as events
from .follows import bp as follows
from .timelines import bp as timelines

blueprints = (follows, timelines, events)
