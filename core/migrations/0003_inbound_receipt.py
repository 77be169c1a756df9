from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_message_claim_token')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InboundReceipt',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('candidate', fields.ForeignKeyField('models.Candidate', source_field='candidate_id', db_constraint=True, to_field='id', related_name='inbound_receipts', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=64)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'inbound_receipt', 'app': 'models', 'unique_together': (('candidate', 'key'),), 'pk_attr': 'id', 'table_description': 'One row per candidate reply received, keyed by a hash of its Message-ID, so the same'},
            bases=['Model'],
        ),
    ]
