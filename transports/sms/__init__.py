"""SMS and MMS through Twilio (or a Twilio-compatible provider): phone numbers as contacts."""

from transports.sms.transport import SmsTransport

__all__ = ["SmsTransport"]
