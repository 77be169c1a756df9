from tortoise import migrations
from tortoise.migrations import operations as ops
from core.models.enums import MessageStatus
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_subsidiaries')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Message',
            name='status',
            field=fields.CharEnumField(description='SCHEDULED: SCHEDULED\nQUEUED: QUEUED\nSENDING: SENDING\nSENT: SENT\nFAILED: FAILED\nCANCELLED: CANCELLED\nBOUNCED: BOUNCED\nRECEIVED: RECEIVED', enum_type=MessageStatus, max_length=9),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['company_id', 'status']),
        ),
        ops.AddIndex(
            model_name='MessageEvent',
            index=Index(fields=['message_id', 'at']),
        ),
    ]
